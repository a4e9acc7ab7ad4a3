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
/// </summary>
public sealed class ChangeFeed : IDisposable
{
    private readonly ChangeHub.Subscription _subscription;
    private readonly FeedFilter _filter;
    private readonly long[] _position;
    private readonly Queue<FeedItem> _backlog = new();
    private Change[]? _batch;
    private int _batchIndex;
    // Resume only: the heads the log was read at, folded into the position once the backlog is delivered.
    private long[]? _headsAfterBacklog;
    // When the last item went out (Stopwatch ticks): idleness is measured from it.
    private long _lastItem = Stopwatch.GetTimestamp();

    private ChangeFeed(ChangeHub.Subscription subscription, FeedFilter filter, long[] position)
    {
        _subscription = subscription;
        _filter = filter;
        _position = position;
    }

    /// <summary>
    /// The revision per partition up to which this watcher has seen everything. During an
    /// initial snapshot it is the snapshot's revision, valid as a resume point only once
    /// <see cref="FeedItemType.InitialEventsEnd"/> has been delivered.
    /// </summary>
    public ReadOnlySpan<long> Position => _position;

    /// <summary>Starts with a snapshot of every matching object, then an initial-events-end marker.</summary>
    public static async Task<ChangeFeed> FromSnapshotAsync(IGrainStore store, ChangeHub hub, FeedFilter filter)
    {
        var subscription = hub.Subscribe();
        try
        {
            var page = await store.ListAsync(filter.Kinds, filter.Namespace is null ? null : filter.Namespace + "/", null, int.MaxValue).ConfigureAwait(false);
            var feed = new ChangeFeed(subscription, filter, page.Heads);
            foreach (var obj in page.Objects)
            {
                var change = new Change
                {
                    Partition = obj.Partition, Revision = obj.Revision, Kind = obj.Kind, Key = obj.Key,
                    Type = ChangeType.Added, Data = obj.Data, Namespace = obj.Namespace, Index = obj.Index,
                };
                if (filter.Matches(change))
                {
                    feed._backlog.Enqueue(new FeedItem(FeedItemType.Change, change));
                }
            }
            feed._backlog.Enqueue(new FeedItem(FeedItemType.InitialEventsEnd));
            return feed;
        }
        catch
        {
            subscription.Dispose();
            throw;
        }
    }

    /// <summary>Starts with every logged change after <paramref name="after"/>.</summary>
    public static async Task<ChangeFeed> ResumeAsync(IGrainStore store, ChangeHub hub, FeedFilter filter, long[] after)
    {
        var subscription = hub.Subscribe();
        try
        {
            var range = await store.ReadChangesAsync(after).ConfigureAwait(false);
            var feed = new ChangeFeed(subscription, filter, (long[])after.Clone());
            foreach (var change in range.Changes)
            {
                if (filter.Matches(change))
                {
                    feed._backlog.Enqueue(new FeedItem(FeedItemType.Change, change));
                }
            }
            // Everything up to the heads read has been looked at, matching or not; the position
            // moves there once the backlog before it has been delivered.
            feed._headsAfterBacklog = range.Heads;
            feed.DrainedBacklog();
            return feed;
        }
        catch
        {
            subscription.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The next item, or <see cref="FeedItemType.Idle"/> when nothing matching has arrived for
    /// <paramref name="idle"/> (at once for <see cref="TimeSpan.Zero"/>, never for an infinite
    /// span; otherwise noticed on the hub's heartbeat, so up to <see cref="ChangeHub.HeartbeatInterval"/>
    /// late). Throws Unavailable if the watcher fell too far behind, and
    /// <see cref="OperationCanceledException"/> when the hub completes (server shutdown).
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
            if (idle == TimeSpan.Zero || (idle != Timeout.InfiniteTimeSpan && Stopwatch.GetElapsedTime(_lastItem) >= idle))
            {
                _lastItem = Stopwatch.GetTimestamp();
                return new FeedItem(FeedItemType.Idle);
            }
            // No timer per wait: the hub's heartbeat wakes every subscription once a second.
            if (!await _subscription.Reader.WaitToReadAsync(cancellationToken).ConfigureAwait(false))
            {
                if (_subscription.Overflowed)
                {
                    throw new ControlPlaneException(ErrorCode.Unavailable, "the watch fell too far behind the change stream; resume from the last token");
                }
                throw new OperationCanceledException("the change stream was closed");
            }
        }
    }

    /// <summary>The next item if one is ready now, without waiting.</summary>
    public bool TryNext(out FeedItem item)
    {
        if (_backlog.Count > 0)
        {
            item = _backlog.Dequeue();
            if (_headsAfterBacklog is not null && item.Change is { } logged)
            {
                _position[logged.Partition] = logged.Revision;
            }
            DrainedBacklog();
            return true;
        }
        while (true)
        {
            if (TryNextFromBatch(out var change))
            {
                item = new FeedItem(FeedItemType.Change, change);
                return true;
            }
            if (!_subscription.Reader.TryRead(out var batch))
            {
                item = default;
                return false;
            }
            _batch = batch;
            _batchIndex = 0;
        }
    }

    private void DrainedBacklog()
    {
        if (_backlog.Count == 0 && _headsAfterBacklog is { } heads)
        {
            for (var p = 0; p < heads.Length; p++)
            {
                _position[p] = Math.Max(_position[p], heads[p]);
            }
            _headsAfterBacklog = null;
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
            if (_filter.Matches(change))
            {
                next = change;
                return true;
            }
        }
        next = null;
        return false;
    }

    public void Dispose() => _subscription.Dispose();
}
