using System.Globalization;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Convergence;
using ControlPlane.Grains.Resources;
using ControlPlane.Silo.Convergence;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;
using Grpc.Core;
using V1Convergence = ControlPlane.Contracts.V1.Convergence;

namespace ControlPlane.Silo.Api;

/// <summary>controlplane.v1.Convergence: waiting for a change to be in force on every counted node.</summary>
public sealed class ConvergenceService(IGrainFactory grains, DurableStore store, ProgrammedPositions positions) : V1Convergence.ConvergenceBase
{
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);
    public static readonly TimeSpan MaxTimeout = TimeSpan.FromSeconds(300);

    public override async Task<WaitProgrammedResponse> WaitProgrammed(WaitProgrammedRequest request, ServerCallContext context)
    {
        var kind = ResourceKinds.Of(request.Kind) is { Programmable: true } k ? k
            : throw ControlPlaneException.Invalid("kind", $"{request.Kind} is not programmed by the nodes; use ENDPOINT, SERVICE, SERVICE_ENDPOINTS, NETWORK, NETWORK_POLICY or NAMESPACE");
        var key = ResourceHandlers<Namespace, Grains.Resources.INamespaceGrain>.KeyOf(kind, request.Namespace, request.Name);
        var timeout = request.TimeoutSeconds == 0 ? DefaultTimeout : TimeSpan.FromSeconds(request.TimeoutSeconds);
        if (timeout > MaxTimeout) throw ControlPlaneException.Invalid("timeout_seconds", $"{request.TimeoutSeconds} is more than {MaxTimeout.TotalSeconds:0}");
        var stored = await store.Store.ReadAsync(kind.Name, key).ConfigureAwait(false)
            ?? throw new ControlPlaneException(ErrorCode.NotFound, $"{kind.Name} '{key}' does not exist");
        var revision = stored.Revision;
        if (request.Etag.Length > 0)
        {
            if (!long.TryParse(request.Etag, NumberStyles.None, CultureInfo.InvariantCulture, out var asked) || asked <= 0)
                throw ControlPlaneException.Invalid("etag", $"{ControlPlaneException.Quote(request.Etag)} is not an etag");
            if (asked > revision)
                throw ControlPlaneException.Invalid("etag", $"{asked} is newer than the object's current etag {revision}");
            revision = asked;
        }
        // Answer before the caller's own deadline passes, so that it learns which nodes are late.
        // (No time at all when that deadline is less than 100 ms away.)
        var until = context.Deadline == DateTime.MaxValue ? timeout
            : TimeSpan.FromTicks(Math.Clamp((context.Deadline - DateTime.UtcNow - TimeSpan.FromMilliseconds(100)).Ticks, 0, timeout.Ticks));
        using var deadline = CancellationTokenSource.CreateLinkedTokenSource(context.CancellationToken);
        deadline.CancelAfter(until);
        var done = await positions.WaitAsync(store.PartitionOf(kind.Name, key), revision, deadline.Token).ConfigureAwait(false);
        context.CancellationToken.ThrowIfCancellationRequested();
        var coverage = await Coverage.OfAsync(grains, store, kind, key, revision).ConfigureAwait(false);
        if (!done)
        {
            throw new ControlPlaneException(ErrorCode.DeadlineExceeded,
                $"{kind.Name} '{key}' at etag {revision} is programmed on {coverage.ProgrammedNodes} of {coverage.ReadyNodes} counted nodes after {until.TotalSeconds:0.#} s; "
                + $"missing: {string.Join(", ", coverage.Missing)}");
        }
        if (await ClosedInsteadAsync(kind, key).ConfigureAwait(false) is { Count: > 0 } closed)
        {
            // In the kernel, but not as written: the nodes closed endpoints rather than apply it.
            throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                $"{kind.Name} '{key}' at etag {revision} is programmed on {coverage.ProgrammedNodes} of {coverage.ReadyNodes} counted nodes, but not as written: "
                + string.Join("; ", closed.Take(3)) + (closed.Count > 3 ? $"; and {closed.Count - 3} more (netctl get nodes)" : ""));
        }
        return new WaitProgrammedResponse { Programmed = coverage };
    }

    /// <summary>
    /// The policy issues that ready nodes' agents report for a policy (every endpoint it closed)
    /// or an endpoint (closed by a policy that could not be applied), as "node: endpoint closed
    /// for direction (policies): reason". An agent sends its issues before the programmed
    /// position they go with, so a position that satisfied a wait has its issues stored here.
    /// </summary>
    private async Task<List<string>> ClosedInsteadAsync(IResourceKind kind, string key)
    {
        var closed = new List<string>();
        if (kind != ResourceKinds.NetworkPolicy && kind != ResourceKinds.Endpoint) return closed;
        var nodes = await store.Store.ListAsync([ResourceKinds.Node.Name], null, null, int.MaxValue).ConfigureAwait(false);
        foreach (var stored in nodes.Objects)
        {
            var status = Node.Parser.ParseFrom(stored.Data).Status;
            if (status is not { Ready: true, Agent: { } agent }) continue;
            foreach (var issue in agent.PolicyIssues)
            {
                if (kind == ResourceKinds.Endpoint ? issue.Endpoint == key : issue.Policies.Contains(key))
                {
                    closed.Add($"{stored.Key}: {issue.Endpoint} closed for {issue.Direction.ToLowerInvariant()} ({string.Join(", ", issue.Policies)}): {issue.Reason}");
                }
            }
        }
        return closed;
    }

    public override Task<ConvergenceStatusResponse> Status(ConvergenceStatusRequest request, ServerCallContext context) =>
        grains.Get<IConvergenceGrain>(IConvergenceGrain.Key).StatusAsync();
}
