using System.Threading.Channels;
using ControlPlane.Storage;

namespace ControlPlane.Storage.Changes;

/// <summary>
/// In-process fan-out of committed changes. The group committer publishes each committed batch
/// once, in commit order; every subscription receives the same array (no per-watcher copy). A
/// subscription whose reader falls more than its capacity (in changes) behind is closed as
/// overflowed and emptied at once, so a stalled reader holds no changes; its feed catches up from
/// the change log (<see cref="ChangeFeed"/>).
/// </summary>
public sealed class ChangeHub
{
    // A batch of no changes, which wakes a waiting reader (its feed's idle time is up).
    private static readonly Change[] Beat = [];
    private readonly object _lock = new();
    private Subscription[] _subscriptions = [];

    /// <summary>How many changes a subscription holds for its reader before it overflows.</summary>
    public const int DefaultCapacity = 16_384;

    public Subscription Subscribe(int capacity = DefaultCapacity)
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
            subscription.Offer(batch);
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
            subscription.Complete();
        }
    }

    private void Remove(Subscription subscription)
    {
        lock (_lock)
        {
            _subscriptions = [.. _subscriptions.Where(s => s != subscription)];
        }
    }

    /// <summary>
    /// One reader's queue of batches. Offering, reading and overflowing take one lock, so the
    /// reader never receives a batch after one that overflowing dropped.
    /// </summary>
    public sealed class Subscription : IDisposable
    {
        private readonly ChangeHub _hub;
        private readonly int _capacity;
        private readonly Channel<Change[]> _channel = Channel.CreateUnbounded<Change[]>();
        private readonly object _gate = new();
        // Changes (a beat counts one) offered and not yet read.
        private int _pending;

        internal Subscription(ChangeHub hub, int capacity)
        {
            ArgumentOutOfRangeException.ThrowIfLessThan(capacity, 1);
            _hub = hub;
            _capacity = capacity;
        }

        /// <summary>True when batches were dropped because the reader fell behind.</summary>
        public bool Overflowed { get; private set; }

        /// <summary>Changes waiting for the reader.</summary>
        public int Pending
        {
            get
            {
                lock (_gate) return _pending;
            }
        }

        internal void Offer(Change[] batch)
        {
            lock (_gate)
            {
                var weight = Math.Max(1, batch.Length);
                if (_pending + weight > _capacity)
                {
                    DropAll(overflowed: true);
                }
                else if (_channel.Writer.TryWrite(batch))
                {
                    _pending += weight;
                }
            }
        }

        /// <summary>The next batch if one is queued; false once drained or dropped.</summary>
        public bool TryRead([System.Diagnostics.CodeAnalysis.NotNullWhen(true)] out Change[]? batch)
        {
            lock (_gate)
            {
                if (!_channel.Reader.TryRead(out batch)) return false;
                _pending -= Math.Max(1, batch.Length);
                return true;
            }
        }

        /// <summary>Waits for a batch: false when the subscription has ended (overflowed, completed or disposed).</summary>
        public ValueTask<bool> WaitToReadAsync(CancellationToken cancellationToken) => _channel.Reader.WaitToReadAsync(cancellationToken);

        /// <summary>Wakes a waiting reader with an empty batch (its feed's idle time is up).</summary>
        internal void Wake() => Offer(Beat);

        internal void Overflow()
        {
            lock (_gate) DropAll(overflowed: true);
        }

        /// <summary>Ends the subscription after what is queued (the reader drains it first).</summary>
        internal void Complete() => _channel.Writer.TryComplete();

        private void DropAll(bool overflowed)
        {
            Overflowed |= overflowed;
            _channel.Writer.TryComplete();
            while (_channel.Reader.TryRead(out _))
            {
            }
            _pending = 0;
        }

        public void Dispose()
        {
            _hub.Remove(this);
            lock (_gate) DropAll(overflowed: false);
        }
    }
}
