using System.Security.Cryptography;
using System.Text;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Services;
using Grpc.Core;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Dns.Feed;

/// <summary>
/// Keeps the zone snapshot in step with the control plane: watches namespaces (each one's
/// &lt;namespace&gt;.svc name exists), services, their endpoint sets,
/// networks (their CIDRs are reverse zones), ServiceImports (the ClusterSet zone, when served) and,
/// for verified pod records (insecure ones need none), endpoints (only their namespace and addresses are kept), all on one
/// watch. It resumes from its last token after a disconnect (lists again only when told the token
/// is compacted), and rebuilds the snapshot after each burst of changes that touch DNS. Until the
/// first snapshot is complete the server answers SERVFAIL; when the control plane is unreachable
/// it keeps answering from the last snapshot. The SOA serial moves only when the records change,
/// and then to the store's position (<see cref="WatchPosition.Ordinal"/>, the sum of its
/// partitions' revisions): so every server following one store agrees on it, and it never goes
/// down while the store is the same one, not even across restarts of this server or of the silo.
/// A restart serves the serial served before when nothing was committed since the records last
/// changed; otherwise it starts at the store's current position. A store replaced by a fresh one
/// counts from 0 again: this server, running through it, keeps counting up from its own serial
/// (<see cref="NextSerial"/>), but a restart after it has nothing but the new store's position,
/// and serves that. Nothing survives both to say how far to jump (see ARCHITECTURE.md).
/// </summary>
public sealed partial class ClusterFeed(ControlPlaneClient client, QueryHandler handler, ClusterZoneOptions zone,
    DnsFeedOptions options, IReadOnlyList<ResourceRecord> staticRecords, ILogger<ClusterFeed> logger,
    IHostApplicationLifetime? lifetime = null, WatchHealth? health = null) : BackgroundService, IWatchSink
{
    private readonly object _lock = new();
    private readonly SemaphoreSlim _dirty = new(0, 1);
    private State _state = new();
    private State? _listing;
    private bool _changed;
    private bool _synced;
    private byte[] _contentHash = [];
    private int _unclaimed;
    private uint _serial;
    // The store position the state applied so far leads up to (the last token's ordinal).
    private ulong _position;
    private bool _rebuildDue;
    // Endpoint addresses change this (under the lock); the pod index last built is of _builtPodVersion.
    private long _podVersion;
    private long _builtPodVersion = -1;
    private PodIndex? _podIndex;
    // Convergence-aware publishing (null when off); services published once stay published.
    private readonly ProgrammedGate? _gate = options.WaitForProgrammed ? new ProgrammedGate(options.ProgrammedBound, TimeProvider.System) : null;
    private readonly Dictionary<string, long> _serviceSince = [];
    private readonly HashSet<string> _publishedServices = [];

    /// <summary>What DNS needs of the cluster; a list fills a fresh one.</summary>
    private sealed class State
    {
        public Dictionary<string, Service> Services { get; } = [];
        public Dictionary<string, ServiceEndpoints> Sets { get; } = [];
        public Dictionary<string, ServiceImport> Imports { get; } = [];
        public Dictionary<string, string[]> NetworkCidrs { get; } = [];
        public HashSet<string> Namespaces { get; } = new(StringComparer.Ordinal);
        // Since: the revision the endpoint's current addresses appeared at; its addresses parsed once.
        public Dictionary<string, (string Namespace, PodAddress[] Addresses, long Since)> Endpoints { get; } = [];
    }

    /// <summary>Completes when the first full snapshot is being served.</summary>
    public Task Synced => _firstSync.Task;

    private readonly TaskCompletionSource _firstSync = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // Ready once the zone of the first complete list answers: the list arrives some tens of
        // milliseconds before the zone built from it is swapped in, and meanwhile every name is SERVFAIL.
        if (health is not null) health.Readiness = () => _firstSync.Task.IsCompleted ? null : "the zone of the first complete list is being built";
        // Once the host has started: inside a silo, the API it follows listens only then, and a
        // watch made before would only log the silo's own start as an outage.
        if (lifetime is not null)
        {
            var started = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (lifetime.ApplicationStarted.Register(() => started.TrySetResult()))
            {
                try
                {
                    await started.Task.WaitAsync(stoppingToken).ConfigureAwait(false);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
        // And it stops once the host is stopping: inside a silo, before the API it follows goes away.
        using var stopping = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken, lifetime?.ApplicationStopping ?? CancellationToken.None);
        stoppingToken = stopping.Token;
        var request = new WatchRequest { Kinds = { Kind.Namespace, Kind.Service, Kind.ServiceEndpoints, Kind.Network }, ProgrammedEvents = _gate is not null };
        if (zone.PodRecords == PodRecordMode.Verified || _gate is not null) request.Kinds.Add(Kind.Endpoint);
        if (zone.ClusterSetZone.Length > 0) request.Kinds.Add(Kind.ServiceImport);
        await Task.WhenAll(
            new ResumableWatch(client, request, this)
            {
                Health = health,
                Lost = (status, detail) =>
                {
                    // Named as configured: a unix socket's transport error speaks of "localhost:80".
                    if (handler.Snapshot.Synced) Log.Unreachable(logger, options.ControlPlane, status, detail);
                    else Log.UnreachableBeforeSync(logger, options.ControlPlane, status, detail);
                },
                Reachable = () => Log.Reachable(logger, options.ControlPlane),
                Relisting = detail => Log.Relisting(logger, detail),
            }.RunAsync(stoppingToken),
            RebuildLoopAsync(stoppingToken)).ConfigureAwait(false);
    }

    /// <summary>
    /// Comes after every list end and live change with the position they lead up to: the rebuild
    /// they made due starts from here, so that its serial is that position.
    /// </summary>
    void IWatchSink.Progress(string resumeToken)
    {
        var position = WatchPosition.Ordinal(resumeToken);
        lock (_lock)
        {
            _position = position;
            if (!_rebuildDue) return;
            _rebuildDue = false;
        }
        Signal();
    }

    void IWatchSink.BeginList()
    {
        lock (_lock) _listing = new State();
    }

    void IWatchSink.Apply(WatchEvent e)
    {
        lock (_lock)
        {
            var state = _listing ?? _state;
            var deleted = e.Type == EventType.Deleted;
            switch (e.ObjectCase)
            {
                case WatchEvent.ObjectOneofCase.Service:
                    var key = e.Service.Metadata.Namespace + "/" + e.Service.Metadata.Name;
                    if (deleted) state.Services.Remove(key);
                    else state.Services[key] = e.Service;
                    if (deleted)
                    {
                        _gate?.Removed("s:" + key);
                        _serviceSince.Remove(key);
                        _publishedServices.Remove(key);
                    }
                    else
                    {
                        _serviceSince.TryAdd(key, RevisionOf(e.Service.Metadata));
                    }
                    _changed = true;
                    break;
                case WatchEvent.ObjectOneofCase.ServiceEndpoints:
                    var setKey = e.ServiceEndpoints.Metadata.Namespace + "/" + e.ServiceEndpoints.Metadata.Name;
                    if (deleted) state.Sets.Remove(setKey);
                    else state.Sets[setKey] = e.ServiceEndpoints;
                    if (deleted) _gate?.Removed("p:" + setKey);
                    _changed = true;
                    break;
                case WatchEvent.ObjectOneofCase.ServiceImport:
                    var importKey = e.ServiceImport.Metadata.Namespace + "/" + e.ServiceImport.Metadata.Name;
                    if (deleted) state.Imports.Remove(importKey);
                    else state.Imports[importKey] = e.ServiceImport;
                    _changed = true;
                    break;
                case WatchEvent.ObjectOneofCase.Namespace:
                    _changed |= deleted ? state.Namespaces.Remove(e.Namespace.Metadata.Name) : state.Namespaces.Add(e.Namespace.Metadata.Name);
                    break;
                case WatchEvent.ObjectOneofCase.Network:
                    string[] cidrs = [.. new[] { e.Network.Spec.Ipv4Cidr, e.Network.Spec.Ipv6Cidr }.Where(c => c.Length > 0)];
                    _changed |= deleted
                        ? state.NetworkCidrs.Remove(e.Network.Metadata.Name)
                        : Replace(state.NetworkCidrs, e.Network.Metadata.Name, cidrs, (a, b) => a.SequenceEqual(b));
                    break;
                case WatchEvent.ObjectOneofCase.Endpoint:
                    // Only what pod records need: most endpoint changes (readiness, node) touch nothing here.
                    var endpointKey = e.Endpoint.Metadata.Namespace + "/" + e.Endpoint.Metadata.Name;
                    if (deleted) _gate?.Removed("e:" + endpointKey);
                    var moved = deleted
                        ? state.Endpoints.Remove(endpointKey)
                        : Replace(state.Endpoints, endpointKey, (Namespace: e.Endpoint.Metadata.Namespace, Addresses: PodAddresses(e.Endpoint.Status.Ips), Since: RevisionOf(e.Endpoint.Metadata)),
                            (a, b) => a.Namespace == b.Namespace && a.Addresses.SequenceEqual(b.Addresses));
                    if (moved) _podVersion++;
                    _changed |= moved;
                    break;
            }
        }
    }

    private static List<(string Namespace, PodAddress Address)> PodsOf(IReadOnlyCollection<(string Namespace, PodAddress[] Addresses, long Since)> endpoints)
    {
        var pods = new List<(string, PodAddress)>(endpoints.Count * 2);
        foreach (var endpoint in endpoints)
        {
            foreach (var address in endpoint.Addresses) pods.Add((endpoint.Namespace, address));
        }
        return pods;
    }

    private static PodAddress[] PodAddresses(IEnumerable<string> ips) =>
        [.. ips.Select(ip => PodAddress.TryParse(ip, out var address) ? address : (PodAddress?)null).OfType<PodAddress>()];

    private static bool Replace<T>(Dictionary<string, T> map, string key, T value, Func<T, T, bool> same)
    {
        if (map.TryGetValue(key, out var old) && same(old, value)) return false;
        map[key] = value;
        return true;
    }

    /// <summary>
    /// The store's position as a serial (RFC 1982 arithmetic: it wraps at 2^32); when that is not
    /// past the current one (a publish the convergence bound released, with no new commit), the
    /// current one plus one.
    /// </summary>
    internal static uint NextSerial(uint? current, ulong position)
    {
        var candidate = (uint)position;
        return current is not { } serial || (int)(candidate - serial) > 0 ? candidate : serial + 1;
    }

    private static long RevisionOf(ObjectMeta meta) => long.TryParse(meta.Etag, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var r) ? r : 0;

    void IWatchSink.EndList()
    {
        lock (_lock)
        {
            _state = _listing!;
            _listing = null;
            _changed = false;
            _podVersion++;
            _synced = true;
            if (_gate is not null)
            {
                // What a list brings was published before this server (or this list) saw it:
                // holding it back would take existing names away. Only what changes later waits.
                foreach (var (key, service) in _state.Services)
                {
                    _gate.Published("s:" + key, RevisionOf(service.Metadata));
                    _serviceSince[key] = RevisionOf(service.Metadata);
                    _publishedServices.Add(key);
                }
                foreach (var (key, set) in _state.Sets) _gate.Published("p:" + key, RevisionOf(set.Metadata));
                foreach (var (key, endpoint) in _state.Endpoints) _gate.Published("e:" + key, endpoint.Since);
            }
            _rebuildDue = true;
        }
    }

    void IWatchSink.Programmed(WatchEvent e)
    {
        if (_gate is null) return;
        var (prefix, meta) = e.ObjectCase switch
        {
            WatchEvent.ObjectOneofCase.Service => ("s:", e.Service.Metadata),
            WatchEvent.ObjectOneofCase.ServiceEndpoints => ("p:", e.ServiceEndpoints.Metadata),
            WatchEvent.ObjectOneofCase.Endpoint => ("e:", e.Endpoint.Metadata),
            _ => (null, null),
        };
        if (prefix is null) return;
        lock (_lock) _gate.Programmed(prefix + meta!.Namespace + "/" + meta.Name, RevisionOf(meta));
        Signal();
    }

    void IWatchSink.Changed()
    {
        lock (_lock)
        {
            if (!_changed) return;
            _changed = false;
            _rebuildDue = true;
        }
    }

    private void Signal()
    {
        if (_dirty.CurrentCount == 0)
        {
            try { _dirty.Release(); } catch (SemaphoreFullException) { }
        }
    }

    /// <summary>
    /// Rebuilds after each burst of changes: it waits <see cref="DnsFeedOptions.Coalesce"/> for
    /// the rest of a burst, and, right after a rebuild, until as long as that rebuild took has
    /// passed since it ended: a large zone under a steady stream of changes is rebuilt with at
    /// most half of a core (its changes published in larger steps), while a change after a quiet
    /// moment is published as soon as ever.
    /// </summary>
    private async Task RebuildLoopAsync(CancellationToken cancellationToken)
    {
        var spent = TimeSpan.Zero;
        var ended = 0L;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                TimeSpan? bound;
                lock (_lock) bound = _gate?.NextBound();
                await _dirty.WaitAsync(bound ?? Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
                var rest = spent - System.Diagnostics.Stopwatch.GetElapsedTime(ended);
                await Task.Delay(rest > options.Coalesce ? rest : options.Coalesce, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            List<Service> services;
            Dictionary<string, ServiceEndpoints> sets;
            List<ServiceImport> imports;
            List<string> cidrs, namespaces;
            // Null when no endpoint address changed since the pod index was built.
            List<(string Namespace, PodAddress Address)>? pods;
            long podVersion;
            ulong position;
            lock (_lock)
            {
                if (!_synced) continue;
                podVersion = _podVersion;
                position = _position;
                cidrs = [.. _state.NetworkCidrs.Values.SelectMany(c => c)];
                namespaces = [.. _state.Namespaces];
                // Node agents report no programming of ClusterSetIPs: imports are published as they come.
                imports = [.. _state.Imports.Values];
                handler.ForwardingClients?.SetNetworks(cidrs);
                if (_gate is null)
                {
                    services = [.. _state.Services.Values];
                    sets = new Dictionary<string, ServiceEndpoints>(_state.Sets);
                    pods = podVersion == _builtPodVersion && _podIndex is not null ? null : PodsOf(_state.Endpoints.Values);
                }
                else
                {
                    var late = _gate.LatePublishes;
                    (services, sets, pods) = Converged();
                    if (_gate.LatePublishes > late) Log.LatePublish(logger, _gate.LatePublishes - late, _gate.Bound.TotalSeconds, _gate.LatePublishes);
                }
            }
            try
            {
                Rebuild(services, sets, imports, cidrs, namespaces, pods, podVersion, position);
            }
            catch (FormatException e)
            {
                // One unusable object must not stop DNS: keep serving the last snapshot.
                Log.RebuildFailed(logger, e.Message);
            }
            ended = System.Diagnostics.Stopwatch.GetTimestamp();
            spent = System.Diagnostics.Stopwatch.GetElapsedTime(started, ended);
        }
    }

    /// <summary>
    /// What may be published now (under the lock): endpoints whose addresses every counted node
    /// has programmed; a ClusterIP service once it, its endpoint set (with at least one endpoint the
    /// agents send to) and those endpoints are programmed (then it stays); a headless service
    /// with the published part of its set.
    /// </summary>
    private (List<Service>, Dictionary<string, ServiceEndpoints>, List<(string, PodAddress)>) Converged()
    {
        var gate = _gate!;
        bool EndpointReady(string key) => _state.Endpoints.TryGetValue(key, out var e) ? gate.Ready("e:" + key, e.Since) : gate.Ready("e:" + key, long.MaxValue);
        ServiceEndpoints Published(string ns, ServiceEndpoints set)
        {
            var kept = set.Clone();
            kept.Endpoints.Clear();
            kept.Endpoints.AddRange(set.Endpoints.Where(a => EndpointReady(ns + "/" + a.Name)));
            return kept;
        }
        var services = new List<Service>();
        var sets = new Dictionary<string, ServiceEndpoints>();
        foreach (var (key, service) in _state.Services)
        {
            _state.Sets.TryGetValue(key, out var set);
            var ns = service.Metadata.Namespace;
            if (service.Spec.Type is ServiceType.ExternalName or ServiceType.Headless)
            {
                // The name is its addresses (or a CNAME): each address is published on its own.
                if (set is not null) sets[key] = Published(ns, set);
                services.Add(service);
                continue;
            }
            if (_publishedServices.Contains(key))
            {
                if (set is not null) sets[key] = set;
                services.Add(service);
                continue;
            }
            // A virtual IP is reachable once it has a backend: the set must hold an endpoint the
            // agents send to (ready, or any with publish_not_ready_addresses; else only the bound publishes it).
            var ready = gate.Ready("s:" + key, _serviceSince.GetValueOrDefault(key));
            var backends = set?.Endpoints.Where(ServiceEndpointRules.Serves(service.Spec)).ToList() ?? [];
            ready &= set is not null && backends.Count > 0 ? gate.Ready("p:" + key, RevisionOf(set.Metadata)) : gate.Ready("p:" + key, long.MaxValue);
            foreach (var address in backends) ready &= EndpointReady(ns + "/" + address.Name);
            if (!ready) continue;
            _publishedServices.Add(key);
            services.Add(service);
            if (set is not null) sets[key] = set;
        }
        var pods = _state.Endpoints.Where(e => EndpointReady(e.Key)).SelectMany(e => e.Value.Addresses.Select(a => (e.Value.Namespace, a))).ToList();
        return (services, sets, pods);
    }

    /// <param name="pods">Null: the addresses of the pod index built last (<see cref="_podVersion"/> did not move).</param>
    private void Rebuild(List<Service> services, Dictionary<string, ServiceEndpoints> sets, List<ServiceImport> imports, List<string> cidrs,
        List<string> namespaces, List<(string Namespace, PodAddress Address)>? pods, long podVersion, ulong position)
    {
        // Only verified pod records depend on endpoint addresses (endpoints may be watched for the programmed gate alone).
        var podIndex = zone.PodRecords == PodRecordMode.Disabled ? null
            : pods is null ? _podIndex
            : new PodIndex(zone.Zone, zone.Ttl, zone.PodRecords == PodRecordMode.Verified ? pods : [], zone.PodRecords);
        var podsSame = podIndex is null || podIndex == _podIndex || podIndex.SameAs(_podIndex);
        if (podsSame && _podIndex is not null) podIndex = _podIndex;
        // The serial is part of the SOA: hash the content with a fixed serial, bump only on change.
        // Pod addresses, the bulk of a large cluster, are compared as a set instead.
        var probe = ClusterRecords.Build(zone, 0, services, sets, imports, cidrs, out _);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var line in probe.Select(r => r.ToString()).Concat(namespaces.Select(ns => $"namespace {ns}")).Order(StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(line));
        }
        var contentHash = hash.GetHashAndReset();
        if (contentHash.AsSpan().SequenceEqual(_contentHash) && podsSame && handler.Snapshot.Synced)
        {
            (_podIndex, _builtPodVersion) = (podIndex, podVersion);
            return;
        }
        _serial = NextSerial(_contentHash.Length == 0 ? null : _serial, position);
        _contentHash = contentHash;
        var records = ClusterRecords.Build(zone, _serial, services, sets, imports, cidrs, out var unclaimed);
        records.AddRange(staticRecords);
        var snapshot = ZoneSnapshot.Build(records, podIndex, namespaces.Select(ns => ClusterRecords.NamespaceName(zone, ns)));
        handler.Swap(snapshot);
        (_podIndex, _builtPodVersion) = (podIndex, podVersion);
        _firstSync.TrySetResult();
        Log.Swapped(logger, services.Count, imports.Count, snapshot.NameCount, snapshot.RecordCount, podIndex?.AddressCount ?? 0, _serial);
        if (unclaimed != _unclaimed && unclaimed > 0) Log.Unclaimed(logger, unclaimed);
        _unclaimed = unclaimed;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Zone snapshot: {Services} services, {Imports} service imports, {Names} names, {Records} records, {PodAddresses} pod addresses, serial {Serial}")]
        public static partial void Swapped(ILogger logger, int services, int imports, int names, int records, int podAddresses, uint serial);

        [LoggerMessage(2, LogLevel.Warning, "Control plane {ControlPlane} unreachable ({Status}: {Detail}); answering from the last snapshot")]
        public static partial void Unreachable(ILogger logger, string controlPlane, StatusCode status, string detail);

        [LoggerMessage(3, LogLevel.Warning, "Watch position compacted ({Detail}); listing again")]
        public static partial void Relisting(ILogger logger, string detail);

        [LoggerMessage(4, LogLevel.Error, "Zone rebuild failed, keeping the last snapshot: {Reason}")]
        public static partial void RebuildFailed(ILogger logger, string reason);

        [LoggerMessage(5, LogLevel.Warning, "Control plane {ControlPlane} unreachable ({Status}: {Detail}); no snapshot yet, answering SERVFAIL for the cluster zones")]
        public static partial void UnreachableBeforeSync(ILogger logger, string controlPlane, StatusCode status, string detail);

        [LoggerMessage(7, LogLevel.Warning, "Published {Count} names or addresses once the {Bound} s bound passed ({Total} so far): some node had not programmed them, or a new service had no programmed ready backend")]
        public static partial void LatePublish(ILogger logger, long count, double bound, long total);

        [LoggerMessage(8, LogLevel.Information, "Control plane {ControlPlane} reachable again; following its changes")]
        public static partial void Reachable(ILogger logger, string controlPlane);

        [LoggerMessage(6, LogLevel.Warning, "{Count} service, ClusterSetIP or endpoint addresses lie in no claimed reverse zone and get no PTR record (Dns:ServiceRanges, Dns:ReverseZones)")]
        public static partial void Unclaimed(ILogger logger, int count);
    }
}
