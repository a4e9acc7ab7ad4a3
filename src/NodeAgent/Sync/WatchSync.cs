using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Sync;

/// <summary>
/// Sync: list + watch of namespaces, networks, nodes, endpoints, services, service endpoints,
/// network policies, peer clusters and service imports into a local view (through <see cref="ResumableWatch"/>). The view is offered
/// only once the first complete list has arrived (in-sync is never faked); while the control
/// plane is unreachable the view, and so the data path, stays as it is. Consumers take what
/// changed since their last call: the overlay a snapshot, the table worker the keys of changed
/// services and policy objects.
/// </summary>
public sealed partial class WatchSync(ControlPlaneClient client, AgentOptions options, ILogger<WatchSync> logger, WatchHealth? health = null) : BackgroundService, IWatchSink
{
    private static readonly Kind[] Kinds = [Kind.Namespace, Kind.Network, Kind.Node, Kind.Endpoint, Kind.Service, Kind.ServiceEndpoints, Kind.NetworkPolicy, Kind.ClusterPeer, Kind.ServiceImport];

    /// <summary>Every object the agent keeps, by key ("namespace/name", or the name of cluster-scoped ones).</summary>
    private sealed class Objects
    {
        public Dictionary<string, Namespace> Namespaces { get; } = [];
        public Dictionary<string, Network> Networks { get; } = [];
        public Dictionary<string, Node> Nodes { get; } = [];
        public Dictionary<string, Endpoint> Endpoints { get; } = [];
        public Dictionary<string, Service> Services { get; } = [];
        public Dictionary<string, ServiceEndpoints> ServiceEndpoints { get; } = [];
        public Dictionary<string, NetworkPolicy> Policies { get; } = [];
        public Dictionary<string, ClusterPeer> Peers { get; } = [];
        public Dictionary<string, ServiceImport> Imports { get; } = [];
    }

    private readonly object _lock = new();
    private Objects _objects = new();
    private Objects? _listing;
    private bool _synced;
    private readonly HashSet<string> _dirtyServices = [], _dirtyImports = [];
    private readonly HashSet<string> _dirtyEndpoints = [], _dirtyPolicies = [], _dirtyNamespaces = [];
    private bool _full = true, _clusterChanged, _tableChanged;
    private readonly ProgrammedProgress _progress = new();
    // Trace contexts of the traced writes each consumer has not taken yet (see TakeTraces).
    private List<System.Diagnostics.ActivityContext>? _overlayTraces, _tableTraces;
    // The table worker runs only with the service proxy or network policy on.
    private readonly bool _table = options.ServiceProxy || options.NetworkPolicy;

    /// <summary>Raised when <see cref="ProgrammedPosition"/> moves (under no lock; read the property).</summary>
    public event Action? ProgrammedMoved;

    /// <summary>The newest resume token whose changes are all in this node's kernel, or null before the first list is.</summary>
    public string? ProgrammedPosition
    {
        get { lock (_lock) return _progress.Programmed; }
    }

    /// <summary>A consumer's pass that took the view at <paramref name="step"/> ended (programmed: acknowledged by the kernel).</summary>
    public void Programmed(ProgrammedProgress.Consumer consumer, long step, bool programmed)
    {
        bool moved;
        lock (_lock) moved = _progress.Done(consumer, step, programmed);
        if (moved) ProgrammedMoved?.Invoke();
    }

    /// <summary>Raised after the first list and after every change of networks, nodes or endpoints.</summary>
    public event Action? Changed;

    /// <summary>Raised after the first list and after every change that concerns the agent's table (services or policy).</summary>
    public event Action? TableChanged;

    /// <summary>
    /// What changed for the agent's table since the last call, or null before the first list.
    /// Full (after a list, a network change or <see cref="InvalidateTable"/>): every service, every
    /// endpoint, policy and namespace. Otherwise the services (by key) to recompute with their
    /// current objects, this node's endpoints if any endpoint changed (hairpin pairs), and the
    /// changed endpoints, policies and namespaces with their current objects (null: deleted).
    /// </summary>
    public TableWork? TakeTableWork()
    {
        lock (_lock)
        {
            if (!_synced) return null;
            var o = _objects;
            var full = _full;
            var services = full ? o.Services.Keys.Concat(o.ServiceEndpoints.Keys).Concat(_dirtyServices).ToHashSet() : _dirtyServices;
            var work = new TableWork(
                _progress.Take(ProgrammedProgress.Consumer.Table),
                full,
                services.Select(k => (k, o.Services.GetValueOrDefault(k), o.ServiceEndpoints.GetValueOrDefault(k))).ToList(),
                (full ? o.Imports.Keys.Concat(_dirtyImports).ToHashSet() : _dirtyImports).Select(k => (k, o.Imports.GetValueOrDefault(k))).ToList(),
                full || _dirtyEndpoints.Count > 0 ? o.Endpoints.ToList() : null,
                ChangedOf(full, o.Endpoints, _dirtyEndpoints),
                ChangedOf(full, o.Policies, _dirtyPolicies),
                ChangedOf(full, o.Namespaces, _dirtyNamespaces),
                new Dictionary<string, Network>(o.Networks));
            _dirtyServices.Clear();
            _dirtyImports.Clear();
            _dirtyEndpoints.Clear();
            _dirtyPolicies.Clear();
            _dirtyNamespaces.Clear();
            _full = false;
            return work;
        }
    }

    private static List<KeyValuePair<string, T?>> ChangedOf<T>(bool full, Dictionary<string, T> all, HashSet<string> dirty) where T : class =>
        full ? all.Select(kv => new KeyValuePair<string, T?>(kv.Key, kv.Value)).ToList()
            : dirty.Select(k => new KeyValuePair<string, T?>(k, all.GetValueOrDefault(k))).ToList();

    /// <summary>Marks everything for recomputation (after a failed apply).</summary>
    public void InvalidateTable()
    {
        lock (_lock) _full = true;
    }

    /// <summary>True once the first complete list has arrived.</summary>
    public bool IsSynced
    {
        get { lock (_lock) return _synced; }
    }

    /// <summary>The view for the overlay reconciler's pass, with the watch step it covers; null before the first complete list.</summary>
    public (ClusterView View, long Step)? TakeOverlay()
    {
        lock (_lock)
        {
            if (!_synced) return null;
            return (new ClusterView(new Dictionary<string, Network>(_objects.Networks), new Dictionary<string, Node>(_objects.Nodes), new Dictionary<string, Endpoint>(_objects.Endpoints),
                    new Dictionary<string, ClusterPeer>(_objects.Peers)),
                _progress.Take(ProgrammedProgress.Consumer.Overlay));
        }
    }

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        new ResumableWatch(client, new WatchRequest { Kinds = { Kinds }, BookmarkIntervalSeconds = 5 }, this)
        {
            Health = health,
            Lost = (status, _) => Log.Unreachable(logger, status),
            Reachable = () => Log.Reachable(logger),
        }.RunAsync(stoppingToken);

    void IWatchSink.BeginList()
    {
        lock (_lock) _listing = new Objects();
    }

    void IWatchSink.Apply(WatchEvent e)
    {
        lock (_lock)
        {
            var o = _listing ?? _objects;
            var deleted = e.Type == EventType.Deleted;
            if (_listing is null) MarkProgress(e.ObjectCase);
            if (_listing is null && e.Traceparent.Length > 0) Traced(e);
            switch (e.ObjectCase)
            {
                case WatchEvent.ObjectOneofCase.Namespace:
                    ForTable(o.Namespaces, _dirtyNamespaces, e.Namespace.Metadata.Name, e.Namespace, deleted);
                    break;
                case WatchEvent.ObjectOneofCase.Network:
                    Set(o.Networks, e.Network.Metadata.Name, e.Network, deleted);
                    _clusterChanged = _tableChanged = _full = true;
                    break;
                case WatchEvent.ObjectOneofCase.Node:
                    Set(o.Nodes, e.Node.Metadata.Name, e.Node, deleted);
                    _clusterChanged = true;
                    break;
                case WatchEvent.ObjectOneofCase.Endpoint:
                    ForTable(o.Endpoints, _dirtyEndpoints, PolicySemantics.KeyOf(e.Endpoint.Metadata), e.Endpoint, deleted);
                    _clusterChanged = true;
                    break;
                case WatchEvent.ObjectOneofCase.Service:
                    ForTable(o.Services, _dirtyServices, PolicySemantics.KeyOf(e.Service.Metadata), e.Service, deleted);
                    break;
                case WatchEvent.ObjectOneofCase.ServiceEndpoints:
                    ForTable(o.ServiceEndpoints, _dirtyServices, PolicySemantics.KeyOf(e.ServiceEndpoints.Metadata), e.ServiceEndpoints, deleted);
                    break;
                case WatchEvent.ObjectOneofCase.NetworkPolicy:
                    ForTable(o.Policies, _dirtyPolicies, PolicySemantics.KeyOf(e.NetworkPolicy.Metadata), e.NetworkPolicy, deleted);
                    break;
                case WatchEvent.ObjectOneofCase.ClusterPeer:
                    Set(o.Peers, e.ClusterPeer.Metadata.Name, e.ClusterPeer, deleted);
                    _clusterChanged = true;
                    break;
                case WatchEvent.ObjectOneofCase.ServiceImport:
                    ForTable(o.Imports, _dirtyImports, PolicySemantics.KeyOf(e.ServiceImport.Metadata), e.ServiceImport, deleted);
                    break;
            }
        }
    }

    /// <summary>Keeps a traced event's context for the consumers it concerns (under the lock; bounded).</summary>
    private void Traced(WatchEvent e)
    {
        var context = Contracts.Hosting.Telemetry.ContextOf(e.Traceparent);
        if (context == default) return;
        if (e.ObjectCase is WatchEvent.ObjectOneofCase.Network or WatchEvent.ObjectOneofCase.Node or WatchEvent.ObjectOneofCase.Endpoint or WatchEvent.ObjectOneofCase.ClusterPeer)
        {
            if ((_overlayTraces ??= []).Count < 64) _overlayTraces.Add(context);
        }
        if (_table && e.ObjectCase is not (WatchEvent.ObjectOneofCase.Node or WatchEvent.ObjectOneofCase.ClusterPeer))
        {
            if ((_tableTraces ??= []).Count < 64) _tableTraces.Add(context);
        }
    }

    /// <summary>
    /// The trace contexts of the traced writes applied to the view since <paramref name="consumer"/>
    /// last asked (null: none): its next kernel pass continues those traces.
    /// </summary>
    public List<System.Diagnostics.ActivityContext>? TakeTraces(ProgrammedProgress.Consumer consumer)
    {
        lock (_lock)
        {
            ref var traces = ref consumer == ProgrammedProgress.Consumer.Overlay ? ref _overlayTraces : ref _tableTraces;
            var taken = traces;
            traces = null;
            return taken;
        }
    }

    /// <summary>A live change is applied: a new step, marked for the consumers it concerns (under the lock).</summary>
    private void MarkProgress(WatchEvent.ObjectOneofCase kind)
    {
        _progress.Applied();
        var overlay = kind is WatchEvent.ObjectOneofCase.Network or WatchEvent.ObjectOneofCase.Node or WatchEvent.ObjectOneofCase.Endpoint or WatchEvent.ObjectOneofCase.ClusterPeer;
        var table = _table && kind is not (WatchEvent.ObjectOneofCase.Node or WatchEvent.ObjectOneofCase.ClusterPeer);
        if (overlay) _progress.Concerns(ProgrammedProgress.Consumer.Overlay);
        if (table) _progress.Concerns(ProgrammedProgress.Consumer.Table);
    }

    void IWatchSink.Progress(string resumeToken)
    {
        bool moved;
        lock (_lock)
        {
            if (_listing is not null || !_synced) return;
            moved = _progress.Step(resumeToken);
        }
        if (moved) ProgrammedMoved?.Invoke();
    }

    void IWatchSink.EndList()
    {
        lock (_lock)
        {
            // Everything is new to the consumers: nothing counts as programmed until both passed.
            _progress.Reset();
            _progress.Applied();
            _progress.Concerns(ProgrammedProgress.Consumer.Overlay);
            if (_table) _progress.Concerns(ProgrammedProgress.Consumer.Table);
            _objects = _listing!;
            _listing = null;
            _synced = true;
            _full = true;
            _clusterChanged = _tableChanged = false;
            Log.Synced(logger, _objects.Networks.Count, _objects.Nodes.Count, _objects.Endpoints.Count, _objects.Policies.Count);
        }
        Changed?.Invoke();
        TableChanged?.Invoke();
    }

    void IWatchSink.Changed()
    {
        bool cluster, table;
        lock (_lock)
        {
            (cluster, table) = (_clusterChanged, _tableChanged);
            _clusterChanged = _tableChanged = false;
        }
        if (cluster) Changed?.Invoke();
        if (table) TableChanged?.Invoke();
    }

    /// <summary>One batch of work for the table (see <see cref="TakeTableWork"/>).</summary>
    public sealed record TableWork(long Step, bool Full,
        IReadOnlyList<(string Key, Service? Service, ServiceEndpoints? Endpoints)> Services,
        IReadOnlyList<(string Key, ServiceImport? Import)> Imports,
        IReadOnlyList<KeyValuePair<string, Endpoint>>? AllEndpoints,
        IReadOnlyList<KeyValuePair<string, Endpoint?>> Endpoints,
        IReadOnlyList<KeyValuePair<string, NetworkPolicy?>> Policies,
        IReadOnlyList<KeyValuePair<string, Namespace?>> Namespaces,
        IReadOnlyDictionary<string, Network> Networks);

    /// <summary>Keeps an object the table depends on and marks its key for the table worker (under the lock).</summary>
    private void ForTable<T>(Dictionary<string, T> map, HashSet<string> dirty, string key, T value, bool deleted)
    {
        Set(map, key, value, deleted);
        dirty.Add(key);
        _tableChanged = true;
    }

    private static void Set<T>(Dictionary<string, T> map, string key, T value, bool deleted)
    {
        if (deleted) map.Remove(key);
        else map[key] = value;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "In sync: {Networks} networks, {Nodes} nodes, {Endpoints} endpoints, {Policies} network policies")]
        public static partial void Synced(ILogger logger, int networks, int nodes, int endpoints, int policies);

        [LoggerMessage(2, LogLevel.Warning, "Control plane unreachable ({Status}); the data path stays as it is")]
        public static partial void Unreachable(ILogger logger, StatusCode status);

        [LoggerMessage(3, LogLevel.Information, "Control plane reachable again; following its changes")]
        public static partial void Reachable(ILogger logger);
    }
}
