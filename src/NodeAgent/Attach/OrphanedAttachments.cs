using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.NodeAgent.Dataplane;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Attach;

/// <summary>
/// Endpoints attached on this node (made by an attach) that have no host interface. Two causes
/// lead here. The kernel removes a veth pair with the container's network namespace, so an
/// interface that was there and is gone means a container removed without a DEL that reached us
/// (the runtime removed it while the agent or the control plane was away, and never calls GC).
/// And an attach cut short after the control plane created the endpoint (the answer lost, the
/// silo killed mid-call) leaves an endpoint that was never wired, whose container's namespace
/// may well still exist. Either way the endpoint stays ready in its services' endpoint sets (a
/// share of their traffic blackholed) and keeps its address and its name (the container's
/// successor, or the runtime's retry for another container id, is refused). Once one has been
/// seen without its interface for <see cref="AgentOptions.OrphanGracePeriod"/> (passes apart,
/// and never while an attach of it is under way), it is detached: deleted with the etag it was
/// judged by, so an attach or a change since then wins. Endpoints made through the API rather
/// than an attach are never touched. What the log says of the cause is what this agent saw: an
/// interface it wired or saw for that attachment and that is gone now, or none since it started
/// (it cannot tell a never-wired endpoint from one that lost its interface while it was down).
/// </summary>
public sealed partial class OrphanedAttachments(ControlPlaneClient client, AgentOptions options, PendingAttachments pending, TimeProvider time, ILogger<OrphanedAttachments> logger)
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);
    private readonly Dictionary<string, (long Since, string Etag)> _missing = new(StringComparer.Ordinal);
    private readonly HashSet<string> _detaching = new(StringComparer.Ordinal);

    // Endpoints whose interface this agent wired or saw, with the attachment (container, interface)
    // it was for: written by attaches and by the passes, read by the passes and by a detach that
    // looks its endpoint up by container (a DEL without the pod name its ADD had).
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, string> _hadInterface = new(StringComparer.Ordinal);

    /// <summary>An attach wired the interface of endpoint <paramref name="key"/> for <paramref name="attachment"/> (its attachment label).</summary>
    public void Wired(string key, string attachment)
    {
        if (attachment.Length > 0) _hadInterface[key] = attachment;
    }

    /// <summary>The endpoint (namespace/name) this agent wired or saw for <paramref name="attachment"/>, if any.</summary>
    public string? EndpointOf(string attachment)
    {
        foreach (var (key, had) in _hadInterface)
        {
            if (had == attachment) return key;
        }
        return null;
    }

    /// <summary>
    /// Called from each reconcile pass with the view's endpoints and the interfaces that exist
    /// now; starts the detach of those whose grace period has run out.
    /// </summary>
    public void Observe(IReadOnlyDictionary<string, Endpoint> endpoints, IReadOnlySet<string> interfaces)
    {
        var sweep = options.OrphanGracePeriod > TimeSpan.Zero;
        var now = time.GetTimestamp();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (key, endpoint) in endpoints)
        {
            if (endpoint.Spec.Node != options.NodeName || !endpoint.Metadata.Labels.ContainsKey(AttachmentLabels.Attachment)) continue;
            var veth = Names.EndpointVeth(key);
            var attachment = endpoint.Metadata.Labels[AttachmentLabels.Attachment];
            if (interfaces.Contains(veth))
            {
                if (!_hadInterface.TryGetValue(key, out var had) || had != attachment) _hadInterface[key] = attachment;
                continue;
            }
            if (!sweep || pending.IsPending(veth)) continue;
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
            var lost = _hadInterface.TryGetValue(key, out var wired) && wired == attachment;
            _ = DetachAsync(key, endpoint, etag, lost);
        }
        foreach (var key in _missing.Keys.Where(k => !seen.Contains(k)).ToList())
        {
            _missing.Remove(key);
        }
        foreach (var (key, _) in _hadInterface)
        {
            // Gone from the view, and not an attach the view has yet to deliver.
            if (!endpoints.ContainsKey(key) && !pending.IsPending(Names.EndpointVeth(key))) _hadInterface.TryRemove(key, out _);
        }
    }

    /// <param name="lost">Whether this agent wired or saw the attachment's interface (it is gone now) rather than never.</param>
    private async Task DetachAsync(string key, Endpoint endpoint, string etag, bool lost)
    {
        var container = endpoint.Metadata.Labels.GetValueOrDefault(AttachmentLabels.ContainerId, "");
        try
        {
            await client.Endpoints.DeleteAsync(endpoint.Metadata.Namespace, endpoint.Metadata.Name, etag, Calls.Within(CallTimeout)).ConfigureAwait(false);
            if (lost) Log.DetachedInterfaceGone(logger, key, container, options.OrphanGracePeriod);
            else Log.DetachedNeverWired(logger, key, container, options.OrphanGracePeriod);
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
        [LoggerMessage(1, LogLevel.Warning, "Endpoint {Endpoint} (container {Container}) has had no interface for {Grace}: its interface, which this agent wired or saw, is gone without a DEL (a veth goes with its container's network namespace); detached it")]
        public static partial void DetachedInterfaceGone(ILogger logger, string endpoint, string container, TimeSpan grace);

        [LoggerMessage(3, LogLevel.Warning, "Endpoint {Endpoint} (container {Container}) has had no interface for {Grace} and none since this agent started: it was never wired (an attach cut short after the endpoint was created) or lost its interface before the agent started; detached it")]
        public static partial void DetachedNeverWired(ILogger logger, string endpoint, string container, TimeSpan grace);

        [LoggerMessage(2, LogLevel.Warning, "Endpoint {Endpoint} has no interface and could not be detached ({Status}: {Detail}); tried again on a later pass")]
        public static partial void DetachFailed(ILogger logger, string endpoint, StatusCode status, string detail);
    }
}
