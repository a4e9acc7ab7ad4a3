using System.Security.Cryptography;
using System.Text;
using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Dns.Feed;

/// <summary>
/// Keeps the zone snapshot in step with the control plane: watches services and their endpoint
/// sets, resumes from its last token after a disconnect (lists again only when told the token is
/// compacted), and rebuilds the snapshot after each burst of changes. Until the first snapshot
/// is complete the server answers SERVFAIL; when the control plane is unreachable it keeps
/// answering from the last snapshot. The SOA serial moves only when the records change.
/// </summary>
public sealed partial class ClusterFeed(ControlPlaneClient client, QueryHandler handler, ClusterZoneOptions zone,
    DnsFeedOptions options, IReadOnlyList<ResourceRecord> staticRecords, ILogger<ClusterFeed> logger) : BackgroundService, IWatchSink
{
    private readonly object _lock = new();
    private readonly SemaphoreSlim _dirty = new(0, 1);
    private Dictionary<string, Service> _services = [];
    private Dictionary<string, ServiceEndpoints> _sets = [];
    private bool _synced;
    private byte[] _contentHash = [];
    private uint _serial = (uint)DateTimeOffset.UtcNow.ToUnixTimeSeconds();

    /// <summary>Completes when the first full snapshot is being served.</summary>
    public Task Synced => _firstSync.Task;

    private readonly TaskCompletionSource _firstSync = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) => Task.WhenAll(
        new ResumableWatch(client, new WatchRequest { Kinds = { Kind.Service, Kind.ServiceEndpoints } }, this)
        {
            Unreachable = (status, detail) => Log.Unreachable(logger, status, detail),
            Relisting = detail => Log.Relisting(logger, detail),
        }.RunAsync(stoppingToken),
        RebuildLoopAsync(stoppingToken));

    // A list fills fresh maps; the snapshot in use stays until the list is complete.
    private (Dictionary<string, Service> Services, Dictionary<string, ServiceEndpoints> Sets)? _listing;

    void IWatchSink.BeginList()
    {
        lock (_lock) _listing = ([], []);
    }

    void IWatchSink.Apply(WatchEvent e)
    {
        lock (_lock)
        {
            var (services, sets) = _listing ?? (_services, _sets);
            switch (e.ObjectCase)
            {
                case WatchEvent.ObjectOneofCase.Service:
                    var key = e.Service.Metadata.Namespace + "/" + e.Service.Metadata.Name;
                    if (e.Type == EventType.Deleted) services.Remove(key);
                    else services[key] = e.Service;
                    break;
                case WatchEvent.ObjectOneofCase.ServiceEndpoints:
                    var setKey = e.ServiceEndpoints.Metadata.Namespace + "/" + e.ServiceEndpoints.Metadata.Name;
                    if (e.Type == EventType.Deleted) sets.Remove(setKey);
                    else sets[setKey] = e.ServiceEndpoints;
                    break;
            }
        }
    }

    void IWatchSink.EndList()
    {
        lock (_lock)
        {
            (_services, _sets) = _listing!.Value;
            _listing = null;
            _synced = true;
        }
        Signal();
    }

    void IWatchSink.Changed() => Signal();

    private void Signal()
    {
        if (_dirty.CurrentCount == 0)
        {
            try { _dirty.Release(); } catch (SemaphoreFullException) { }
        }
    }

    private async Task RebuildLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                await _dirty.WaitAsync(cancellationToken).ConfigureAwait(false);
                await Task.Delay(options.Coalesce, cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            List<Service> services;
            Dictionary<string, ServiceEndpoints> sets;
            lock (_lock)
            {
                if (!_synced) continue;
                services = [.. _services.Values];
                sets = new Dictionary<string, ServiceEndpoints>(_sets);
            }
            try
            {
                Rebuild(services, sets);
            }
            catch (FormatException e)
            {
                // One unusable object must not stop DNS: keep serving the last snapshot.
                Log.RebuildFailed(logger, e.Message);
            }
        }
    }

    private void Rebuild(List<Service> services, Dictionary<string, ServiceEndpoints> sets)
    {
        // The serial is part of the SOA: hash the content with a fixed serial, bump only on change.
        var probe = ClusterRecords.Build(zone, 0, services, sets);
        using var hash = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        foreach (var line in probe.Select(r => r.ToString()).Order(StringComparer.Ordinal))
        {
            hash.AppendData(Encoding.UTF8.GetBytes(line));
        }
        var contentHash = hash.GetHashAndReset();
        if (contentHash.AsSpan().SequenceEqual(_contentHash) && handler.Snapshot.Synced)
        {
            return;
        }
        if (_contentHash.Length > 0) _serial++;
        _contentHash = contentHash;
        var records = ClusterRecords.Build(zone, _serial, services, sets);
        records.AddRange(staticRecords);
        var snapshot = ZoneSnapshot.Build(records);
        handler.Swap(snapshot);
        _firstSync.TrySetResult();
        Log.Swapped(logger, services.Count, snapshot.NameCount, snapshot.RecordCount, _serial);
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Zone snapshot: {Services} services, {Names} names, {Records} records, serial {Serial}")]
        public static partial void Swapped(ILogger logger, int services, int names, int records, uint serial);

        [LoggerMessage(2, LogLevel.Warning, "Control plane unreachable ({Status}: {Detail}); answering from the last snapshot")]
        public static partial void Unreachable(ILogger logger, StatusCode status, string detail);

        [LoggerMessage(3, LogLevel.Warning, "Watch position compacted ({Detail}); listing again")]
        public static partial void Relisting(ILogger logger, string detail);

        [LoggerMessage(4, LogLevel.Error, "Zone rebuild failed, keeping the last snapshot: {Reason}")]
        public static partial void RebuildFailed(ILogger logger, string reason);
    }
}
