using System.Threading.Channels;
using ControlPlane.Storage;

namespace ControlPlane.Storage.Changes;

/// <summary>
/// In-process fan-out of committed changes. The group committer publishes each committed batch
/// once, in commit order; every subscription receives the same array (no per-watcher copy). A
/// subscription that falls more than its capacity behind is closed as overflowed, and its
/// watcher resumes from its last position.
/// </summary>
public sealed class ChangeHub
{
    /// <summary>How often <see cref="Heartbeat"/> should run: the resolution of a feed's idle timeout.</summary>
    public static readonly TimeSpan HeartbeatInterval = TimeSpan.FromSeconds(1);

    // The heartbeat: a batch of no changes, which wakes a waiting reader.
    private static readonly Change[] Beat = [];
    private readonly object _lock = new();
    private Subscription[] _subscriptions = [];

    public Subscription Subscribe(int capacity = 65_536)
    {
        var subscription = new Subscription(this, capacity);
        lock (_lock)
        {
            _subscriptions = [.. _subscriptions, subscription];
        }
        return subscription;
    }

    /// <summary>Delivers a committed batch to every subscriber. Called by the committer only.</summary>
    public void Publish(Change[] batch)
    {
        if (batch.Length == 0)
        {
            return;
        }
        foreach (var subscription in Volatile.Read(ref _subscriptions))
        {
            if (!subscription.Writer.TryWrite(batch))
            {
                subscription.Overflow();
            }
        }
    }

    /// <summary>
    /// Wakes every subscription with an empty batch, so a waiting feed can notice it has been idle
    /// (one timer for the silo instead of one per waiting watcher). A full subscription is skipped.
    /// </summary>
    public void Heartbeat()
    {
        foreach (var subscription in Volatile.Read(ref _subscriptions))
        {
            subscription.Writer.TryWrite(Beat);
        }
    }

    /// <summary>
    /// Closes every subscription as overflowed: changes were missed (the log was compacted past
    /// what this silo had read), so every watcher must resume from its own position.
    /// </summary>
    public void OverflowAll()
    {
        foreach (var subscription in Volatile.Read(ref _subscriptions))
        {
            subscription.Overflow();
        }
    }

    /// <summary>Ends every subscription, e.g. when the silo shuts down.</summary>
    public void CompleteAll()
    {
        foreach (var subscription in Volatile.Read(ref _subscriptions))
        {
            subscription.Writer.TryComplete();
        }
    }

    private void Remove(Subscription subscription)
    {
        lock (_lock)
        {
            _subscriptions = [.. _subscriptions.Where(s => s != subscription)];
        }
    }

    public sealed class Subscription : IDisposable
    {
        private readonly ChangeHub _hub;
        private readonly Channel<Change[]> _channel;

        internal Subscription(ChangeHub hub, int capacity)
        {
            _hub = hub;
            _channel = Channel.CreateBounded<Change[]>(new BoundedChannelOptions(capacity)
            {
                SingleReader = true,
                SingleWriter = true,
                FullMode = BoundedChannelFullMode.DropWrite,
            });
        }

        internal ChannelWriter<Change[]> Writer => _channel.Writer;

        public ChannelReader<Change[]> Reader => _channel.Reader;

        /// <summary>True when batches were dropped because the reader fell behind.</summary>
        public bool Overflowed { get; private set; }

        internal void Overflow()
        {
            Overflowed = true;
            _channel.Writer.TryComplete();
        }

        public void Dispose()
        {
            _hub.Remove(this);
            _channel.Writer.TryComplete();
        }
    }
}
