using ControlPlane.Contracts.V1;
using ControlPlane.Grains;
using ControlPlane.Grains.ClusterSet;
using ControlPlane.Grains.Controllers;
using ControlPlane.Grains.Resources;
using K = ControlPlane.Grains.Resources.Kinds;
using ControlPlane.Storage;
using ControlPlane.Storage.GrainStorage;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Silo.ClusterSet;

/// <summary>
/// The ClusterSet controller: keeps a <see cref="PeerLink"/> per ClusterPeer, records what each
/// peer says of itself (its ranges are claimed, its networks and nodes stored), derives every
/// ServiceImport from the exports of this cluster and of its peers joined both ways (each side's
/// ClusterPeer for the other Joined), and sets the
/// conditions of this cluster's exports. A lost peer's part of the imports is kept for
/// <see cref="ClusterSetOptions.PeerGracePeriod"/>, then withdrawn; it comes back when the peer
/// does. Local objects are never changed because of a peer (only imports and peers' statuses).
/// </summary>
public sealed class ClusterSetController(DurableStore store, IGrainFactory grains, ClusterSetOptions options, ControlPlaneOptions controlPlane,
    PeerClients clients, PeerLinks links, TimeProvider time, ILoggerFactory loggers)
    : FeedController(store, grains, loggers.CreateLogger<ClusterSetController>())
{
    private readonly ILogger _logger = loggers.CreateLogger<ClusterSetController>();
    private readonly HashSet<string> _namespaces = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Service> _services = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServiceEndpoints> _sets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServiceExport> _exports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ServiceImport> _imports = new(StringComparer.Ordinal);
    private readonly Dictionary<string, ClusterPeer> _peers = new(StringComparer.Ordinal);
    private readonly Dictionary<string, long> _observed = new(StringComparer.Ordinal);
    private readonly string[] _families = [.. new[] { (controlPlane.ServiceIpv4Cidr, "IPv4"), (controlPlane.ServiceIpv6Cidr, "IPv6") }
        .Where(r => r.Item1.Length > 0).Select(r => r.Item2)];

    // This cluster's networks only for the peers refused for an overlap, which are judged again
    // when they change (the peer's own view may not change at all).
    private bool _rangesChanged;

    protected override IReadOnlyList<string> Kinds { get; } =
        [K.Namespace, K.Service, K.ServiceEndpoints,
         K.ServiceExport, K.ServiceImport, K.ClusterPeer, K.Network];

    // Grace periods end without any change arriving: look again every second.
    protected override TimeSpan Resync => TimeSpan.FromSeconds(1);

    protected override void Reset()
    {
        _namespaces.Clear();
        _services.Clear();
        _sets.Clear();
        _exports.Clear();
        _imports.Clear();
        _peers.Clear();
        _observed.Clear();
        _rangesChanged = true;
    }

    protected override void Apply(Change change)
    {
        var deleted = change.Type == ChangeType.Deleted;
        switch (change.Kind)
        {
            case K.Namespace:
                if (deleted) _namespaces.Remove(change.Key); else _namespaces.Add(change.Key);
                break;
            case K.Service: Put(_services, change, Service.Parser); break;
            case K.ServiceEndpoints: Put(_sets, change, ServiceEndpoints.Parser); break;
            case K.ServiceExport: Put(_exports, change, ServiceExport.Parser); break;
            case K.ServiceImport: Put(_imports, change, ServiceImport.Parser); break;
            case K.ClusterPeer:
                Put(_peers, change, ClusterPeer.Parser);
                _rangesChanged |= deleted; // a deleted peer's ranges are free
                break;
            case K.Network: _rangesChanged = true; break;
        }
    }

    private static void Put<T>(Dictionary<string, T> map, Change change, Google.Protobuf.MessageParser<T> parser) where T : Google.Protobuf.IMessage<T>
    {
        if (change.Type == ChangeType.Deleted) map.Remove(change.Key);
        else map[change.Key] = parser.ParseFrom(change.Data);
    }

    protected override async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var now = time.GetUtcNow();
        links.Sync(_peers.Values, peer => new PeerLink(peer.Metadata.Name, [.. peer.Spec.Addresses], clients, options, time, Wake,
            loggers.CreateLogger<PeerLink>()));
        var joined = await ObservePeersAsync().ConfigureAwait(false);

        // Every cluster's contribution per exported service: this cluster's, then each live peer's.
        var contributions = new Dictionary<string, List<Contribution>>(StringComparer.Ordinal);
        var own = new Dictionary<string, (Contribution? Contribution, string? Reason, string? Message)>(StringComparer.Ordinal);
        foreach (var (key, export) in _exports)
        {
            var result = Contribution.Of(options.ClusterId, export, _services.GetValueOrDefault(key), _sets.GetValueOrDefault(key));
            own[key] = result;
            if (result.Contribution is { } c) Add(contributions, key, c);
        }
        foreach (var link in links.All)
        {
            if (!joined.Contains(link.Name) || link.LostSince(now) is { } lost && now - lost >= options.PeerGracePeriod)
            {
                continue; // not joined, or lost for longer than the grace period: withdrawn
            }
            if (link.Synced)
            {
                // A peer that does not count this cluster (it has no ClusterPeer for it, or judged
                // it not joined) routes nothing back to it: its part is withdrawn at once.
                if (!link.JoinedByPeer) continue;
                foreach (var (key, (c, _)) in link.Contributions())
                {
                    if (c is not null) Add(contributions, key, c);
                }
            }
            else
            {
                // Not heard from since this silo started: keep its part of the stored imports for now.
                foreach (var (key, stored) in _imports)
                {
                    if (stored.Status?.Clusters.FirstOrDefault(p => p.Cluster == link.Name) is { } part)
                    {
                        Add(contributions, key, Contribution.Of(stored, part));
                    }
                }
            }
        }

        var writes = new List<Task>();
        foreach (var key in contributions.Keys.Union(_imports.Keys).ToList())
        {
            var (ns, name) = ObjectKeys.Split(key);
            var wanted = _namespaces.Contains(ns) && contributions.TryGetValue(key, out var list)
                ? ImportCalculator.Import(ns, name, list, _families)
                : null;
            _imports.TryGetValue(key, out var stored);
            if (wanted is null)
            {
                if (stored is not null) writes.Add(Grains.Get<IServiceImportGrain>(key).DeleteAsync());
            }
            else if (!SameImport(wanted, stored))
            {
                writes.Add(Grains.Get<IServiceImportGrain>(key).PutAsync(wanted));
            }
        }
        foreach (var (key, export) in _exports)
        {
            var (c, reason, message) = own[key];
            var status = ImportCalculator.Conditions(reason, message, c, contributions.TryGetValue(key, out var list) ? list : []);
            if (!SameConditions(status, export.Status))
            {
                writes.Add(Grains.Get<IServiceExportGrain>(key).SetStatusAsync(status));
            }
        }
        await Task.WhenAll(writes).ConfigureAwait(false);
    }

    /// <summary>Hands each peer's changed identity, networks and nodes to its grain; the peers that are joined.</summary>
    private async Task<HashSet<string>> ObservePeersAsync()
    {
        var joined = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, peer) in _peers)
        {
            if (PeerJudge.IsJoined(peer))
            {
                joined.Add(name);
            }
        }
        foreach (var name in _observed.Keys.Where(n => !_peers.ContainsKey(n)).ToList())
        {
            _observed.Remove(name);
        }
        if (_rangesChanged)
        {
            _rangesChanged = false;
            foreach (var (name, peer) in _peers)
            {
                if (peer.Status is { } status && Conditions.Find(status.Conditions, PeerJudge.Joined) is { Reason: "Overlap" }) _observed.Remove(name);
            }
        }
        foreach (var link in links.All)
        {
            var version = link.ViewVersion;
            if (_observed.TryGetValue(link.Name, out var seen) && seen == version || link.View() is not { } view)
            {
                continue;
            }
            var isJoined = await Grains.Get<IClusterPeerGrain>(link.Name).ObserveAsync(view.Info, view.Observed).ConfigureAwait(false);
            if (isJoined) joined.Add(link.Name); else joined.Remove(link.Name);
            _observed[link.Name] = version;
        }
        return joined;
    }

    private static void Add(Dictionary<string, List<Contribution>> map, string key, Contribution contribution)
    {
        if (!map.TryGetValue(key, out var list)) map[key] = list = [];
        list.Add(contribution);
    }

    /// <summary>The wanted import equals the stored one but for what its grain owns (addresses, identity).</summary>
    private static bool SameImport(ServiceImport wanted, ServiceImport? stored)
    {
        if (stored is null) return false;
        var compared = wanted.Clone();
        compared.Metadata = stored.Metadata;
        compared.Spec.Ips.Add(stored.Spec.Ips);
        return compared.Equals(stored);
    }

    private static bool SameConditions(ServiceExportStatus wanted, ServiceExportStatus? stored) =>
        stored is not null && wanted.Conditions.All(w => Conditions.Find(stored.Conditions, w.Type) is { } s
            && s.Status == w.Status && s.Reason == w.Reason && s.Message == w.Message);
}
