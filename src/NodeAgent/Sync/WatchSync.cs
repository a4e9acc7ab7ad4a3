using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Sync;

/// <summary>
/// Sync: list + watch of networks, nodes and endpoints into a local view (through
/// <see cref="ResumableWatch"/>). The view is offered only once the first complete list has
/// arrived (in-sync is never faked); while the control plane is unreachable the view, and so the
/// data path, stays as it is.
/// </summary>
public sealed partial class WatchSync(ControlPlaneClient client, ILogger<WatchSync> logger) : BackgroundService, IWatchSink
{
    private readonly object _lock = new();
    private Dictionary<string, Network> _networks = [];
    private Dictionary<string, Node> _nodes = [];
    private Dictionary<string, Endpoint> _endpoints = [];
    private (Dictionary<string, Network> Networks, Dictionary<string, Node> Nodes, Dictionary<string, Endpoint> Endpoints)? _listing;
    private bool _synced;

    /// <summary>Raised after the first list and after every change that follows.</summary>
    public event Action? Changed;

    /// <summary>The current view, or null before the first complete list.</summary>
    public ClusterView? Snapshot()
    {
        lock (_lock)
        {
            return _synced ? new ClusterView(new Dictionary<string, Network>(_networks), new Dictionary<string, Node>(_nodes), new Dictionary<string, Endpoint>(_endpoints)) : null;
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new ResumableWatch(client, new WatchRequest { Kinds = { Kind.Network, Kind.Node, Kind.Endpoint }, BookmarkIntervalSeconds = 5 }, this)
        {
            Unreachable = (status, _) => Log.Unreachable(logger, status),
        }.RunAsync(stoppingToken);

    void IWatchSink.BeginList()
    {
        lock (_lock) _listing = ([], [], []);
    }

    void IWatchSink.Apply(WatchEvent e)
    {
        lock (_lock)
        {
            var (networks, nodes, endpoints) = _listing ?? (_networks, _nodes, _endpoints);
            var deleted = e.Type == EventType.Deleted;
            switch (e.ObjectCase)
            {
                case WatchEvent.ObjectOneofCase.Network: Set(networks, e.Network.Metadata.Name, e.Network, deleted); break;
                case WatchEvent.ObjectOneofCase.Node: Set(nodes, e.Node.Metadata.Name, e.Node, deleted); break;
                case WatchEvent.ObjectOneofCase.Endpoint: Set(endpoints, $"{e.Endpoint.Metadata.Namespace}/{e.Endpoint.Metadata.Name}", e.Endpoint, deleted); break;
            }
        }
    }

    void IWatchSink.EndList()
    {
        lock (_lock)
        {
            (_networks, _nodes, _endpoints) = _listing!.Value;
            _listing = null;
            _synced = true;
            Log.Synced(logger, _networks.Count, _nodes.Count, _endpoints.Count);
        }
        Changed?.Invoke();
    }

    void IWatchSink.Changed() => Changed?.Invoke();

    private static void Set<T>(Dictionary<string, T> map, string key, T value, bool deleted)
    {
        if (deleted) map.Remove(key);
        else map[key] = value;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "In sync: {Networks} networks, {Nodes} nodes, {Endpoints} endpoints")]
        public static partial void Synced(ILogger logger, int networks, int nodes, int endpoints);

        [LoggerMessage(2, LogLevel.Warning, "Control plane unreachable ({Status}); the data path stays as it is")]
        public static partial void Unreachable(ILogger logger, StatusCode status);
    }
}
