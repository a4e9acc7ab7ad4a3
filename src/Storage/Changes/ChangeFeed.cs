using System.Diagnostics;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage;

namespace ControlPlane.Storage.Changes;

/// <summary>
/// One watcher's view of the change stream: list + resume (docs/ARCHITECTURE.md, "Change stream").
/// It subscribes to the live fan-out first and only then reads the store (a snapshot, or the
/// logged changes after a resume position); live changes at or below what the store read
/// covered are skipped. Every change after the starting point is therefore delivered once, in
/// revision order per partition. <see cref="Position"/> advances over filtered-out changes too,
/// so a bookmark taken from it never makes a watcher re-read them.
/// <para>
/// The log is read in pages (<see cref="PageLimit"/> changes per partition), and a watcher that
/// falls more than its subscription's capacity behind the live changes (a slow or stalled client)
/// loses its subscription's queue and catches up from the log the same way, from its position,
/// before it takes live changes again. So a watcher holds a bounded number of changes whatever
/// its lag, and a lagging watcher is slowed, not ended (as etcd moves a slow watcher to its
/// unsynced group); only a position the log no longer reaches ends it (OUT_OF_RANGE).
/// </para>
/// </summary>
public sealed class ChangeFeed : IDisposable
{
    /// <summary>Changes per partition read from the log at once.</summary>
    public const int PageLimit = 1_000;

    /// <summary>
    /// Changes per partition of a resumed feed's first page: small, so that a watcher far behind
    /// gets its first events at once rather than after a full page of every partition.
    /// </summary>
    public const int FirstPageLimit = 64;

    private readonly IGrainStore _store;
    private readonly ChangeHub _hub;
    private readonly int _capacity;
    private readonly FeedFilter _filter;
    private long[] _position;
    private readonly Queue<FeedItem> _backlog = new();
    private ChangeHub.Subscription _subscription;
    private Change[]? _batch;
    private int _batchIndex;
    // Reading the log: where the page being delivered reaches, folded into the position once it is delivered.
    private long[]? _throughAfterBacklog;
    // True while the log has more to read before live changes are taken again.
    private bool _fromLog;
    // When the last item went out (Stopwatch ticks): idleness is measured from it.
    private long _lastItem = Stopwatch.GetTimestamp();
    // Wakes this feed's wait when its idle time is up (the only wake-up besides changes); made on
    // the first idle wait and re-armed only once it has fired, so a busy feed arms it at most once
    // per idle period.
    private Timer? _idleTimer;
    // When the armed timer fires (Stopwatch ticks), or 0 while it is not armed.
    private long _idleTimerDue;

    private ChangeFeed(IGrainStore store, ChangeHub hub, int capacity, FeedFilter filter, long[] position)
    {
        _store = store;
        _hub = hub;
        _capacity = capacity;
        _filter = filter;
        _position = position;
        _subscription = hub.Subscribe(capacity);
    }

    /// <summary>
    /// The revision per partition up to which this watcher has seen everything. During an
    /// initial snapshot it is the snapshot's revision, valid as a resume point only once
    /// <see cref="FeedItemType.InitialEventsEnd"/> has been delivered.
    /// </summary>
    public ReadOnlySpan<long> Position => _position;

    /// <summary>Times this feed fell behind its subscription's capacity and caught up from the log.</summary>
    internal int CatchUps { get; private set; }

    /// <summary>Live changes queued for this feed, at most its capacity.</summary>
    internal int Buffered => _subscription.Pending;

    /// <summary>Starts with a snapshot of every matching object, then an initial-events-end marker.</summary>
    public static async Task<ChangeFeed> FromSnapshotAsync(IGrainStore store, ChangeHub hub, FeedFilter filter, int capacity = ChangeHub.DefaultCapacity)
    {
        // Subscribed (in the constructor) before the snapshot is read; the position is set from it.
        var feed = new ChangeFeed(store, hub, capacity, filter, []);
        try
        {
            var page = await store.ListAsync(filter.Kinds, filter.Namespace is null ? null : filter.Namespace + "/", null, int.MaxValue).ConfigureAwait(false);
            feed._position = page.Heads;
            foreach (var obj in page.Objects)
            {
                var change = new Change
                {
                    Partition = obj.Partition, Revision = obj.Revision, Kind = obj.Kind, Key = obj.Key,
                    Type = ChangeType.Added, Data = obj.Data, Namespace = obj.Namespace, Index = obj.Index,
                };
                if (filter.Apply(change) is not null)
                {
                    feed._backlog.Enqueue(new FeedItem(FeedItemType.Change, change));
                }
            }
            feed._backlog.Enqueue(new FeedItem(FeedItemType.InitialEventsEnd));
            return feed;
        }
        catch
        {
            feed.Dispose();
            throw;
        }
    }

    /// <summary>Starts with every logged change after <paramref name="after"/>.</summary>
    public static async Task<ChangeFeed> ResumeAsync(IGrainStore store, ChangeHub hub, FeedFilter filter, long[] after, int capacity = ChangeHub.DefaultCapacity)
    {
        var feed = new ChangeFeed(store, hub, capacity, filter, (long[])after.Clone());
        try
        {
            // The first page now, so that a position the log cannot continue from fails the call.
            await feed.ReadLogPageAsync(FirstPageLimit).ConfigureAwait(false);
            return feed;
        }
        catch
        {
            feed.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The next item, or <see cref="FeedItemType.Idle"/> when nothing matching has arrived for
    /// <paramref name="idle"/> (at once for <see cref="TimeSpan.Zero"/>, never for an infinite
    /// span). Throws <see cref="ErrorCode.RevisionCompacted"/> when catching up needs changes the
    /// log no longer keeps, and <see cref="OperationCanceledException"/> when the hub completes
    /// (server shutdown).
    /// </summary>
    public async ValueTask<FeedItem> NextAsync(TimeSpan idle, CancellationToken cancellationToken)
    {
        while (true)
        {
            if (TryNext(out var ready))
            {
                _lastItem = Stopwatch.GetTimestamp();
                return ready;
            }
            if (_fromLog)
            {
                cancellationToken.ThrowIfCancellationRequested();
                try
                {
                    await ReadLogPageAsync().ConfigureAwait(false);
                }
                catch (ControlPlaneException e) when (e.Code == ErrorCode.RevisionCompacted)
                {
                    // Not the caller's token at fault (that was read when the feed opened): this
                    // stream, token or not, fell behind what the log retains.
                    throw new ControlPlaneException(ErrorCode.RevisionCompacted,
                        "the watch fell behind: it was read too slowly, and the changes it still needs are no longer in the retained change log; list and watch again", inner: e);
                }
                continue;
            }
            if (idle != Timeout.InfiniteTimeSpan)
            {
                // One reading of the clock for both: a second could be past the deadline.
                var remaining = idle - Stopwatch.GetElapsedTime(_lastItem);
                if (remaining <= TimeSpan.Zero)
                {
                    _lastItem = Stopwatch.GetTimestamp();
                    return new FeedItem(FeedItemType.Idle);
                }
                WakeAfter(remaining);
            }
            if (!await _subscription.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (!_subscription.Overflowed)
                {
                    throw new OperationCanceledException("the change stream was closed");
                }
                // Fell behind: what the subscription dropped is in the log.
                Telemetry.StoreTelemetry.FeedCatchUps.Add(1);
                CatchUps++;
                _fromLog = true;
            }
        }
    }

    /// <summary>
    /// Makes sure the feed's wait is woken within <paramref name="remaining"/> (positive). A timer
    /// already armed to fire no later is left as it is (the idle deadline only moves later, and an
    /// early wake just waits again), so no timer is re-armed per wait.
    /// </summary>
    private void WakeAfter(TimeSpan remaining)
    {
        // Whole milliseconds, rounded up: the timer's unit (a part of one would fire at once, early).
        var milliseconds = (long)Math.Ceiling(remaining.TotalMilliseconds);
        var due = Stopwatch.GetTimestamp() + milliseconds * Stopwatch.Frequency / 1000;
        var armed = Volatile.Read(ref _idleTimerDue);
        if (armed != 0 && armed <= due)
        {
            return;
        }
        Volatile.Write(ref _idleTimerDue, due);
        _idleTimer ??= new Timer(static state => ((ChangeFeed)state!).IdleTimerFired(), this, Timeout.Infinite, Timeout.Infinite);
        _idleTimer.Change(milliseconds, Timeout.Infinite);
    }

    private void IdleTimerFired()
    {
        Volatile.Write(ref _idleTimerDue, 0);
        Volatile.Read(ref _subscription).Wake();
    }

    /// <summary>The next item if one is ready now, without waiting.</summary>
    public bool TryNext(out FeedItem item)
    {
        if (_backlog.Count > 0)
        {
            item = _backlog.Dequeue();
            if (_throughAfterBacklog is not null && item.Change is { } logged)
            {
                _position[logged.Partition] = logged.Revision;
            }
            DrainedBacklog();
            return true;
        }
        while (!_fromLog)
        {
            if (TryNextFromBatch(out var change))
            {
                item = new FeedItem(FeedItemType.Change, change);
                return true;
            }
            if (!_subscription.TryRead(out var batch))
            {
                break;
            }
            _batch = batch;
            _batchIndex = 0;
        }
        item = default;
        return false;
    }

    /// <summary>
    /// Reads the next page of the log after the position into the backlog. A subscription that
    /// overflowed is replaced first: live changes are taken from one that existed before the page
    /// that reaches the heads was read, so nothing committed in between is missed.
    /// </summary>
    private async Task ReadLogPageAsync(int limit = PageLimit)
    {
        if (_subscription.Overflowed)
        {
            _subscription.Dispose();
            _subscription = _hub.Subscribe(_capacity);
            _batch = null;
        }
        var range = await _store.ReadChangesAsync(_position, limit).ConfigureAwait(false);
        foreach (var change in range.Changes)
        {
            if (_filter.Apply(change) is { } delivered)
            {
                _backlog.Enqueue(new FeedItem(FeedItemType.Change, delivered));
            }
        }
        // Everything up to where the page reaches has been looked at, matching or not; the
        // position moves there once the backlog before it has been delivered.
        _throughAfterBacklog = range.Through;
        _fromLog = !range.Complete;
        DrainedBacklog();
    }

    private void DrainedBacklog()
    {
        if (_backlog.Count == 0 && _throughAfterBacklog is { } through)
        {
            for (var p = 0; p < through.Length; p++)
            {
                _position[p] = Math.Max(_position[p], through[p]);
            }
            _throughAfterBacklog = null;
        }
    }

    private bool TryNextFromBatch(out Change? next)
    {
        while (_batch is not null && _batchIndex < _batch.Length)
        {
            var change = _batch[_batchIndex++];
            if (change.Revision <= _position[change.Partition])
            {
                continue;
            }
            _position[change.Partition] = change.Revision;
            if (_filter.Apply(change) is { } delivered)
            {
                next = delivered;
                return true;
            }
        }
        _batch = null;
        next = null;
        return false;
    }

    public void Dispose()
    {
        _idleTimer?.Dispose();
        _subscription.Dispose();
    }
}
