using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Runtime.Grains;
using ControlPlane.Runtime.Storage;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Grains.Controllers;

/// <summary>
/// Expires node leases and carries node readiness to the node's endpoints: a node whose agent
/// stops renewing is marked not ready, and its endpoints' effective readiness follows (so they
/// leave service endpoint sets); a node that comes back restores them.
/// </summary>
public sealed class NodeLifecycleController(GrainRuntime runtime, ControlPlaneOptions options, ILogger<NodeLifecycleController> logger)
    : FeedController(runtime, logger)
{
    private readonly Dictionary<string, bool> _nodeReady = [];
    private readonly Dictionary<string, (string Node, bool NodeReady)> _endpoints = [];
    private readonly HashSet<string> _dirtyNodes = [];

    protected override IReadOnlyList<string> Kinds { get; } = [Resources.Kinds.Node, Resources.Kinds.Endpoint];

    protected override TimeSpan Resync => options.NodeLeaseDuration / 4;

    protected override void Reset()
    {
        _nodeReady.Clear();
        _endpoints.Clear();
        _dirtyNodes.Clear();
    }

    protected override void Apply(Change change)
    {
        var deleted = change.Type == ChangeType.Deleted;
        if (change.Kind == Resources.Kinds.Node)
        {
            if (deleted) _nodeReady.Remove(change.Key);
            else _nodeReady[change.Key] = Node.Parser.ParseFrom(change.Data).Status.Ready;
            _dirtyNodes.Add(change.Key);
            return;
        }
        if (deleted)
        {
            _endpoints.Remove(change.Key);
            return;
        }
        var endpoint = Endpoint.Parser.ParseFrom(change.Data);
        _endpoints[change.Key] = (endpoint.Spec.Node, endpoint.Status.NodeReady);
        _dirtyNodes.Add(endpoint.Spec.Node);
    }

    protected override async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var checks = _nodeReady.Keys.Select(node => Grains.GetGrain<INodeGrain>(node).CheckLeaseAsync()).ToList();
        await Task.WhenAll(checks).ConfigureAwait(false);
        var updates = new List<Task>();
        foreach (var (key, (node, nodeReady)) in _endpoints)
        {
            if (_dirtyNodes.Contains(node) && _nodeReady.TryGetValue(node, out var ready) && ready != nodeReady)
            {
                updates.Add(Grains.GetGrain<IEndpointGrain>(key).SetNodeReadyAsync(ready));
            }
        }
        _dirtyNodes.Clear();
        await Task.WhenAll(updates).ConfigureAwait(false);
    }
}
