using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Storage.GrainStorage;
using ControlPlane.Storage;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Grains.Controllers;

/// <summary>
/// Expires node leases and carries node readiness to the node's endpoints: a node whose agent
/// stops renewing is marked not ready, and its endpoints' effective readiness follows (so they
/// leave service endpoint sets); a node that comes back restores them. Leases are checked once
/// per quarter lease; endpoint readiness is reconciled only for nodes whose view changed.
/// </summary>
public sealed class NodeLifecycleController(DurableStore store, IGrainFactory grains, ControlPlaneOptions options, TimeProvider time, ILogger<NodeLifecycleController> logger)
    : FeedController(store, grains, logger)
{
    private readonly Dictionary<string, bool> _nodeReady = [];
    private readonly Dictionary<string, Dictionary<string, bool>> _endpointsByNode = [];
    private readonly Dictionary<string, string> _nodeOfEndpoint = [];
    private readonly HashSet<string> _dirtyNodes = [];
    private DateTimeOffset _nextLeaseCheck;

    protected override IReadOnlyList<string> Kinds { get; } = [Resources.Kinds.Node, Resources.Kinds.Endpoint];

    protected override TimeSpan Resync => options.NodeLeaseDuration / 4;

    protected override void Reset()
    {
        _nodeReady.Clear();
        _endpointsByNode.Clear();
        _nodeOfEndpoint.Clear();
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
        if (_nodeOfEndpoint.Remove(change.Key, out var previous))
        {
            _endpointsByNode[previous].Remove(change.Key);
        }
        if (deleted)
        {
            return;
        }
        var endpoint = Endpoint.Parser.ParseFrom(change.Data);
        var node = endpoint.Spec.Node;
        _nodeOfEndpoint[change.Key] = node;
        if (!_endpointsByNode.TryGetValue(node, out var endpoints))
        {
            _endpointsByNode[node] = endpoints = [];
        }
        endpoints[change.Key] = endpoint.Status.NodeReady;
        if (!_nodeReady.TryGetValue(node, out var ready) || ready != endpoint.Status.NodeReady)
        {
            _dirtyNodes.Add(node);
        }
    }

    protected override async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        if (now >= _nextLeaseCheck)
        {
            _nextLeaseCheck = now + Resync;
            // Readiness changes come back through the feed and mark the node dirty.
            await Task.WhenAll(_nodeReady.Keys.Select(node => Grains.Get<INodeGrain>(node).CheckLeaseAsync())).ConfigureAwait(false);
        }
        var updates = new List<Task>();
        foreach (var node in _dirtyNodes)
        {
            if (!_endpointsByNode.TryGetValue(node, out var endpoints))
            {
                continue;
            }
            // A node that is not registered (deleted while an endpoint on it was being created) is not ready.
            var ready = _nodeReady.GetValueOrDefault(node);
            foreach (var (key, nodeReady) in endpoints)
            {
                if (nodeReady != ready)
                {
                    updates.Add(Grains.Get<IEndpointGrain>(key).SetNodeReadyAsync(ready));
                }
            }
        }
        _dirtyNodes.Clear();
        await Task.WhenAll(updates).ConfigureAwait(false);
    }
}
