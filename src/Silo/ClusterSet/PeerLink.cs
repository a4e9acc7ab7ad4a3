using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.ClusterSet;
using Google.Protobuf.WellKnownTypes;
using Grpc.Core;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Silo.ClusterSet;

/// <summary>
/// This silo's link to one peer cluster: a resumable list + watch of the peer's exports, services,
/// endpoint sets, networks and nodes over its API, and the peer's identity. What it has seen stays
/// while the peer is lost, so that its imports can be kept for the grace period and restored at
/// once when it returns (the watch resumes from its token). It also watches the peer's own
/// ClusterPeer for this cluster, to say whether the peer counts this cluster as a member: peering
/// is two objects, one in each cluster, and either side may refuse or drop the other.
/// </summary>
public sealed class PeerLink : IWatchSink, IDisposable
{
    private static readonly Kind[] Watched = [Kind.ServiceExport, Kind.Service, Kind.ServiceEndpoints, Kind.Network, Kind.Node, Kind.ClusterPeer];
    private static readonly TimeSpan InfoRefresh = TimeSpan.FromSeconds(30);

    private readonly Lock _lock = new();
    private readonly ControlPlaneClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly Action _changed;
    private readonly TimeProvider _time;
    private readonly TimeSpan _silence;
    private readonly string _self;
    private PeerState _current = new();
    private PeerState? _building;
    private ClusterInfo? _info;
    private bool _synced;
    // Asks for the peer's identity now: a list again after the first means the addresses led to
    // another store, which may be another cluster answering under this peer's addresses.
    private readonly SemaphoreSlim _refreshInfo = new(0, 1);
    private bool _streamUp;
    private DateTimeOffset _lastHeard;
    private DateTimeOffset _lostSince;
    private string _message = "connecting";
    private long _viewVersion;
    private long _exportVersion;
    private (long Version, IReadOnlyDictionary<string, (Contribution? Contribution, string? Reason)> Value)? _contributions;

    public PeerLink(string name, IReadOnlyList<string> addresses, PeerClients clients, ClusterSetOptions options, TimeProvider time,
        Action changed, ILogger logger)
    {
        Name = name;
        Addresses = addresses;
        _client = clients.Connect(addresses);
        _time = time;
        _changed = changed;
        _lostSince = time.GetUtcNow();
        _silence = TimeSpan.FromSeconds(3 * Math.Max(1, options.PeerBookmarkSeconds) + 2);
        _self = options.ClusterId;
        var request = new WatchRequest { BookmarkIntervalSeconds = Math.Max(1, options.PeerBookmarkSeconds) };
        request.Kinds.Add(Watched);
        var watch = new ResumableWatch(_client, request, this)
        {
            // A returning peer is noticed within a second: one attempt a second per peer is cheap.
            MaxBackoff = TimeSpan.FromSeconds(1),
            Unreachable = (code, detail) =>
            {
                lock (_lock)
                {
                    if (_streamUp || _message != $"{code}: {detail}")
                    {
                        logger.LogWarning("ClusterSet peer {Peer} unreachable: {Code} {Detail}", name, code, detail);
                    }
                    _streamUp = false;
                    if (_lostSince == default) _lostSince = _time.GetUtcNow();
                    _message = $"{code}: {detail}";
                }
                _changed();
            },
        };
        _ = Task.Run(() => watch.RunAsync(_stop.Token));
        _ = Task.Run(() => RefreshInfoAsync(_stop.Token));
    }

    public string Name { get; }

    public IReadOnlyList<string> Addresses { get; }

    /// <summary>Bumped when the peer's identity, networks or nodes change.</summary>
    public long ViewVersion { get { lock (_lock) return _viewVersion; } }

    /// <summary>The peer's identity, networks and nodes, once both are known.</summary>
    public PeerView? View()
    {
        lock (_lock)
        {
            if (_info is null || !_synced) return null;
            var observed = new ClusterPeerStatus();
            observed.Networks.Add(_current.Networks.Values.Select(PeerView.Remote));
            observed.Nodes.Add(_current.Nodes.Values.Select(PeerView.Remote));
            return new PeerView(_info, observed);
        }
    }

    /// <summary>True once the peer's state was listed since this link started.</summary>
    public bool Synced { get { lock (_lock) return _synced; } }

    /// <summary>
    /// Whether the peer counts this cluster as a member: its own ClusterPeer for this cluster is
    /// Joined. Until it is, the peer routes nothing to this cluster's networks, so its endpoints
    /// could not answer this cluster's workloads.
    /// </summary>
    public bool JoinedByPeer
    {
        get
        {
            lock (_lock) return SelfJoined()?.Status == Conditions.True;
        }
    }

    /// <summary>Heard from within the last few bookmark intervals, over an open watch.</summary>
    public bool Connected(DateTimeOffset now)
    {
        lock (_lock) return _synced && _streamUp && now - _lastHeard < _silence;
    }

    /// <summary>When the peer was lost (or, never reached since this link started, when it started); null while connected.</summary>
    public DateTimeOffset? LostSince(DateTimeOffset now)
    {
        lock (_lock)
        {
            if (_synced && _streamUp && now - _lastHeard < _silence) return null;
            return _streamUp && _synced ? _lastHeard : _lostSince;
        }
    }

    /// <summary>Every export of the peer, by "namespace/name": its contribution, or why it has none.</summary>
    public IReadOnlyDictionary<string, (Contribution? Contribution, string? Reason)> Contributions()
    {
        lock (_lock)
        {
            if (_contributions is { } cached && cached.Version == _exportVersion) return cached.Value;
            var result = new Dictionary<string, (Contribution?, string?)>(StringComparer.Ordinal);
            foreach (var (key, export) in _current.Exports)
            {
                var (contribution, reason, _) = Contribution.Of(Name, export, _current.Services.GetValueOrDefault(key), _current.Sets.GetValueOrDefault(key));
                result[key] = (contribution, reason);
            }
            _contributions = (_exportVersion, result);
            return result;
        }
    }

    public PeerConnection Connection(DateTimeOffset now, TimeSpan grace)
    {
        lock (_lock)
        {
            var connected = _synced && _streamUp && now - _lastHeard < _silence;
            var connection = new PeerConnection
            {
                Connected = connected,
                Exports = (uint)_current.Exports.Count,
                Message = connected ? string.Empty : _message,
                PeerJoined = _synced ? PeerJoined() : null,
            };
            if (_lastHeard != default)
            {
                connection.LastSync = Timestamp.FromDateTimeOffset(_lastHeard);
                connection.LagSeconds = Math.Max(0, (now - _lastHeard).TotalSeconds);
            }
            if (!connected)
            {
                var lost = _streamUp && _synced ? _lastHeard : _lostSince;
                connection.WithdrawTime = Timestamp.FromDateTimeOffset(lost + grace);
            }
            return connection;
        }
    }

    /// <summary>The peer's Joined condition for this cluster, or False with reason NotAPeer when it has no ClusterPeer for it.</summary>
    private Condition PeerJoined()
    {
        if (_current.Self is not { } self)
        {
            return Conditions.Of(PeerJudge.Joined, Conditions.False, "NotAPeer", $"cluster '{Name}' has no ClusterPeer for this cluster ('{_self}')");
        }
        return SelfJoined() is { } joined
            ? joined.Clone()
            : Conditions.Of(PeerJudge.Joined, Conditions.Unknown, "NotReadYet", $"cluster '{Name}' has not yet judged this cluster");
    }

    /// <summary>The Joined condition of the peer's own ClusterPeer for this cluster, as stored there; null when it has none yet.</summary>
    private Condition? SelfJoined() =>
        _current.Self?.Status is { } status ? Conditions.Find(status.Conditions, PeerJudge.Joined) : null;

    void IWatchSink.BeginList()
    {
        lock (_lock) _building = new PeerState();
    }

    void IWatchSink.Apply(WatchEvent e)
    {
        lock (_lock)
        {
            var state = _building ?? _current;
            var deleted = e.Type == EventType.Deleted;
            switch (e.ObjectCase)
            {
                case WatchEvent.ObjectOneofCase.ServiceExport: Put(state.Exports, Key(e.ServiceExport.Metadata), e.ServiceExport, deleted); _exportVersion++; break;
                case WatchEvent.ObjectOneofCase.Service: Put(state.Services, Key(e.Service.Metadata), e.Service, deleted); _exportVersion++; break;
                case WatchEvent.ObjectOneofCase.ServiceEndpoints: Put(state.Sets, Key(e.ServiceEndpoints.Metadata), e.ServiceEndpoints, deleted); _exportVersion++; break;
                case WatchEvent.ObjectOneofCase.Network: Put(state.Networks, e.Network.Metadata.Name, e.Network, deleted); _viewVersion++; break;
                case WatchEvent.ObjectOneofCase.Node: Put(state.Nodes, e.Node.Metadata.Name, e.Node, deleted); _viewVersion++; break;
                case WatchEvent.ObjectOneofCase.ClusterPeer when e.ClusterPeer.Metadata.Name == _self: state.Self = deleted ? null : e.ClusterPeer; break;
            }
        }
    }

    void IWatchSink.EndList()
    {
        bool again;
        lock (_lock)
        {
            again = _synced;
            _current = _building ?? _current;
            _building = null;
            _synced = true;
            Heard();
            _viewVersion++;
            _exportVersion++;
        }
        if (again && _refreshInfo.CurrentCount == 0)
        {
            try { _refreshInfo.Release(); } catch (SemaphoreFullException) { }
        }
        _changed();
    }

    void IWatchSink.Changed() => _changed();

    void IWatchSink.Progress(string resumeToken)
    {
        bool recovered;
        lock (_lock)
        {
            recovered = !_streamUp;
            Heard();
        }
        if (recovered) _changed();
    }

    private void Heard()
    {
        _streamUp = true;
        _lastHeard = _time.GetUtcNow();
        _lostSince = default;
        _message = string.Empty;
    }

    private async Task RefreshInfoAsync(CancellationToken cancellationToken)
    {
        var delay = TimeSpan.FromMilliseconds(200);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var info = await _client.GetClusterInfoAsync(Calls.Within(TimeSpan.FromSeconds(5), cancellationToken)).ConfigureAwait(false);
                bool changed;
                lock (_lock)
                {
                    changed = !info.Equals(_info);
                    if (changed)
                    {
                        _info = info;
                        _viewVersion++;
                    }
                }
                if (changed) _changed();
                delay = InfoRefresh;
            }
            catch (RpcException)
            {
                delay = TimeSpan.FromSeconds(Math.Min(5, delay.TotalSeconds * 2));
            }
            try
            {
                await _refreshInfo.WaitAsync(delay, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    private static string Key(ObjectMeta meta) => $"{meta.Namespace}/{meta.Name}";

    private static void Put<T>(Dictionary<string, T> map, string key, T value, bool deleted)
    {
        if (deleted) map.Remove(key);
        else map[key] = value;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _client.Dispose();
    }

    private sealed class PeerState
    {
        public Dictionary<string, ServiceExport> Exports { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, Service> Services { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, ServiceEndpoints> Sets { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, Network> Networks { get; } = new(StringComparer.Ordinal);
        public Dictionary<string, Node> Nodes { get; } = new(StringComparer.Ordinal);
        public ClusterPeer? Self { get; set; }
    }
}
