using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Sync;

/// <summary>
/// Sync: list + watch of networks, nodes, endpoints, services and service endpoints into a local view (through
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
    private Dictionary<string, Service> _services = [];
    private Dictionary<string, ServiceEndpoints> _serviceEndpoints = [];
    private (Dictionary<string, Network> Networks, Dictionary<string, Node> Nodes, Dictionary<string, Endpoint> Endpoints,
        Dictionary<string, Service> Services, Dictionary<string, ServiceEndpoints> ServiceEndpoints)? _listing;
    private bool _synced;
    private readonly HashSet<string> _dirtyServices = [];
    private bool _allServicesDirty = true, _endpointsDirty = true, _clusterChanged, _servicesChanged;

    /// <summary>Raised after the first list and after every change of networks, nodes or endpoints.</summary>
    public event Action? Changed;

    /// <summary>Raised after the first list and after every change that concerns service load balancing.</summary>
    public event Action? ServicesChanged;

    /// <summary>
    /// What changed for services since the last call: the services (by key) to recompute with their
    /// current objects, whether this node's endpoints changed, and the networks. Null before the first list.
    /// </summary>
    public ServiceWork? TakeServiceWork()
    {
        lock (_lock)
        {
            if (!_synced) return null;
            var keys = _allServicesDirty ? _services.Keys.Concat(_serviceEndpoints.Keys).Concat(_dirtyServices).ToHashSet() : _dirtyServices.ToHashSet();
            var work = new ServiceWork(
                _allServicesDirty,
                keys.Select(k => (k, _services.GetValueOrDefault(k), _serviceEndpoints.GetValueOrDefault(k))).ToList(),
                _endpointsDirty ? _endpoints.ToList() : null,
                new Dictionary<string, Network>(_networks));
            _dirtyServices.Clear();
            _allServicesDirty = _endpointsDirty = false;
            return work;
        }
    }

    /// <summary>Marks everything for recomputation (after a failed apply).</summary>
    public void InvalidateServices()
    {
        lock (_lock) _allServicesDirty = _endpointsDirty = true;
    }

    /// <summary>The current view, or null before the first complete list.</summary>
    public ClusterView? Snapshot()
    {
        lock (_lock)
        {
            return _synced ? new ClusterView(new Dictionary<string, Network>(_networks), new Dictionary<string, Node>(_nodes), new Dictionary<string, Endpoint>(_endpoints)) : null;
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new ResumableWatch(client, new WatchRequest { Kinds = { Kind.Network, Kind.Node, Kind.Endpoint, Kind.Service, Kind.ServiceEndpoints }, BookmarkIntervalSeconds = 5 }, this)
        {
            Unreachable = (status, _) => Log.Unreachable(logger, status),
        }.RunAsync(stoppingToken);

    void IWatchSink.BeginList()
    {
        lock (_lock) _listing = ([], [], [], [], []);
    }

    void IWatchSink.Apply(WatchEvent e)
    {
        lock (_lock)
        {
            var (networks, nodes, endpoints, services, serviceEndpoints) = _listing ?? (_networks, _nodes, _endpoints, _services, _serviceEndpoints);
            var deleted = e.Type == EventType.Deleted;
            switch (e.ObjectCase)
            {
                case WatchEvent.ObjectOneofCase.Network:
                    Set(networks, e.Network.Metadata.Name, e.Network, deleted);
                    _clusterChanged = _servicesChanged = _allServicesDirty = _endpointsDirty = true;
                    break;
                case WatchEvent.ObjectOneofCase.Node:
                    Set(nodes, e.Node.Metadata.Name, e.Node, deleted);
                    _clusterChanged = true;
                    break;
                case WatchEvent.ObjectOneofCase.Endpoint:
                    Set(endpoints, $"{e.Endpoint.Metadata.Namespace}/{e.Endpoint.Metadata.Name}", e.Endpoint, deleted);
                    _clusterChanged = _servicesChanged = _endpointsDirty = true;
                    break;
                case WatchEvent.ObjectOneofCase.Service:
                    var service = $"{e.Service.Metadata.Namespace}/{e.Service.Metadata.Name}";
                    Set(services, service, e.Service, deleted);
                    _dirtyServices.Add(service);
                    _servicesChanged = true;
                    break;
                case WatchEvent.ObjectOneofCase.ServiceEndpoints:
                    var key = $"{e.ServiceEndpoints.Metadata.Namespace}/{e.ServiceEndpoints.Metadata.Name}";
                    Set(serviceEndpoints, key, e.ServiceEndpoints, deleted);
                    _dirtyServices.Add(key);
                    _servicesChanged = true;
                    break;
            }
        }
    }

    void IWatchSink.EndList()
    {
        lock (_lock)
        {
            (_networks, _nodes, _endpoints, _services, _serviceEndpoints) = _listing!.Value;
            _listing = null;
            _synced = true;
            _allServicesDirty = _endpointsDirty = true;
            _clusterChanged = _servicesChanged = false;
            Log.Synced(logger, _networks.Count, _nodes.Count, _endpoints.Count);
        }
        Changed?.Invoke();
        ServicesChanged?.Invoke();
    }

    void IWatchSink.Changed()
    {
        bool cluster, services;
        lock (_lock)
        {
            (cluster, services) = (_clusterChanged, _servicesChanged);
            _clusterChanged = _servicesChanged = false;
        }
        if (cluster) Changed?.Invoke();
        if (services) ServicesChanged?.Invoke();
    }

    /// <summary>One batch of service work (see <see cref="TakeServiceWork"/>).</summary>
    public sealed record ServiceWork(bool Full, IReadOnlyList<(string Key, Service? Service, ServiceEndpoints? Endpoints)> Services,
        IReadOnlyList<KeyValuePair<string, Endpoint>>? Endpoints, IReadOnlyDictionary<string, Network> Networks);

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
