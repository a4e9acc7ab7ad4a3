using ControlPlane.Storage.Changes;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Storage.GrainStorage;

/// <summary>
/// The silo's durable store: the database (this silo's SQLite file, or PostgreSQL shared with
/// other silos), the group committer (this silo's only writer), the change hub that fans
/// committed changes out to watchers (fed by the committer, or by reading a shared log back), and
/// change log compaction. Disposed after Orleans has stopped: queued writes commit, then every
/// watch ends.
/// </summary>
public sealed class DurableStore : IDisposable
{
    private readonly Timer _compactor;
    private readonly ChangeTailer? _tailer;
    private readonly ILogger<DurableStore> _logger;
    private readonly StoreOptions _options;
    private int _disposed;

    public DurableStore(IGrainStore store, StoreOptions options, ILogger<DurableStore> logger)
    {
        Store = store;
        _options = options;
        _logger = logger;
        Partitions = store.Open(options.SiloId, options.Partitions);
        Hub = new ChangeHub();
        // A store only this silo writes: the committer publishes each batch before acknowledging
        // it. A shared one: every silo reads the log back, its own writes included.
        Committer = new GroupCommitter(store, Hub, Partitions, publish: store is not ISharedLog, logger);
        if (store is ISharedLog log)
        {
            _tailer = new ChangeTailer(store, log, Hub, Partitions.Heads, logger);
        }
        _compactor = new Timer(_ => Compact(), null, options.CompactionInterval, options.CompactionInterval);
        logger.LogInformation("Store opened with {Partitions} partitions, owned by {Silo}", Partitions.Count, options.SiloId);
    }

    public IGrainStore Store { get; }

    public ChangeHub Hub { get; }

    public PartitionState Partitions { get; }

    public GroupCommitter Committer { get; }

    public int PartitionOf(string kind, string key) => Partitioner.PartitionOf(kind, key, Partitions.Count);

    private void Compact()
    {
        try
        {
            Store.Compact(_options.ChangeLogRetention);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "Change log compaction failed; it is retried on the next interval");
        }
    }

    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _compactor.Dispose();
        Committer.Dispose();
        _tailer?.Dispose();
        Hub.CompleteAll();
        // The store itself belongs to whoever created it (the host's container disposes it next).
    }
}
