using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.NodeAgent.Dataplane;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Attach;

/// <summary>
/// Endpoints attached on this node for a container whose host interface is gone. The kernel
/// removes a veth pair with the container's network namespace, so this is a container removed
/// without a DEL that reached us (the runtime removed it while the agent or the control plane was
/// away, and never calls GC). Such an endpoint can never be wired again, yet it stays ready in its
/// services' endpoint sets (a share of their traffic blackholed) and keeps its address and its
/// name (the container's successor is refused). Once one has been seen without its interface for
/// <see cref="AgentOptions.OrphanGracePeriod"/> (passes apart, and never while an attach of it is
/// under way), it is detached: deleted with the etag it was judged by, so an attach or a change
/// since then wins. Endpoints made through the API rather than an attach are never touched.
/// </summary>
public sealed partial class OrphanedAttachments(ControlPlaneClient client, AgentOptions options, PendingAttachments pending, TimeProvider time, ILogger<OrphanedAttachments> logger)
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);
    private readonly Dictionary<string, (long Since, string Etag)> _missing = new(StringComparer.Ordinal);
    private readonly HashSet<string> _detaching = new(StringComparer.Ordinal);

    /// <summary>
    /// Called from each reconcile pass with the view's endpoints and the interfaces that exist
    /// now; starts the detach of those whose grace period has run out.
    /// </summary>
    public void Observe(IReadOnlyDictionary<string, Endpoint> endpoints, IReadOnlySet<string> interfaces)
    {
        if (options.OrphanGracePeriod <= TimeSpan.Zero) return;
        var now = time.GetTimestamp();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, endpoint) in endpoints)
        {
            if (endpoint.Spec.Node != options.NodeName || !endpoint.Metadata.Labels.ContainsKey(AttachmentLabels.Attachment)) continue;
            var veth = Names.EndpointVeth(key);
            if (interfaces.Contains(veth) || pending.IsPending(veth)) continue;
            seen.Add(key);
            var etag = endpoint.Metadata.Etag;
            if (!_missing.TryGetValue(key, out var missing) || missing.Etag != etag)
            {
                // First seen without its interface, or changed since: the grace period starts now.
                _missing[key] = (now, etag);
                continue;
            }
            if (time.GetElapsedTime(missing.Since, now) < options.OrphanGracePeriod) continue;
            lock (_detaching)
            {
                if (!_detaching.Add(key)) continue;
            }
            _ = DetachAsync(key, endpoint, etag);
        }
        foreach (var key in _missing.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _missing.Remove(key);
        }
    }

    private async Task DetachAsync(string key, Endpoint endpoint, string etag)
    {
        var container = endpoint.Metadata.Labels.GetValueOrDefault(AttachmentLabels.ContainerId, "");
        try
        {
            await client.Endpoints.DeleteAsync(endpoint.Metadata.Namespace, endpoint.Metadata.Name, etag, Calls.Within(CallTimeout)).ConfigureAwait(false);
            Log.Detached(logger, key, container, options.OrphanGracePeriod);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.Aborted)
        {
            // Deleted, re-attached or changed meanwhile: the next passes judge it again.
        }
        catch (RpcException e)
        {
            Log.DetachFailed(logger, key, e.StatusCode, e.Status.Detail);
        }
        finally
        {
            lock (_detaching) _detaching.Remove(key);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Endpoint {Endpoint} (container {Container}) has had no interface for {Grace}: its container's namespace is gone without a DEL; detached it")]
        public static partial void Detached(ILogger logger, string endpoint, string container, TimeSpan grace);

        [LoggerMessage(2, LogLevel.Warning, "Endpoint {Endpoint} has no interface and could not be detached ({Status}: {Detail}); tried again on a later pass")]
        public static partial void DetachFailed(ILogger logger, string endpoint, StatusCode status, string detail);
    }
}
