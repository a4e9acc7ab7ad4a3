using System.Collections.Concurrent;

namespace ControlPlane.Silo.Security;

/// <summary>
/// Per-client token buckets and open-watch counts, keyed by <see cref="Caller.Key"/>. Each
/// client's entry has its own small lock (a check is a dictionary lookup and a few arithmetic
/// operations under it). The table is bounded by <see cref="LimitsOptions.MaxClients"/>: when
/// it is full, entries whose bucket has refilled and that hold no watch are removed (forgetting
/// them loses nothing, a new entry starts full); a client that still finds no room is counted
/// in one shared overflow entry.
/// </summary>
public sealed class ClientLimiter(LimitsOptions options, TimeProvider time)
{
    private const string OverflowKey = "*overflow*";

    private readonly ConcurrentDictionary<string, Entry> _clients = new(StringComparer.Ordinal);
    private readonly double _rate = options.RequestsPerSecond;
    private readonly double _burst = options.EffectiveBurst;
    private int _sweeping;

    public LimitsOptions Options => options;

    public int TrackedClients => _clients.Count;

    /// <summary>Takes one token for <paramref name="key"/>; when none is left, how long until one is.</summary>
    public bool TryAcquire(string key, out TimeSpan retryAfter)
    {
        retryAfter = TimeSpan.Zero;
        if (_rate <= 0) return true;
        var now = time.GetTimestamp();
        while (true)
        {
            var entry = EntryOf(key, now);
            lock (entry)
            {
                if (entry.Removed) continue;
                Refill(entry, now);
                if (entry.Tokens >= 1)
                {
                    entry.Tokens -= 1;
                    return true;
                }
                retryAfter = TimeSpan.FromSeconds((1 - entry.Tokens) / _rate);
                return false;
            }
        }
    }

    /// <summary>
    /// Counts one more open watch for <paramref name="key"/>, unless it holds the most allowed;
    /// disposing <paramref name="slot"/> releases it.
    /// </summary>
    public bool TryOpenWatch(string key, out WatchSlot slot)
    {
        slot = default;
        if (options.WatchesPerClient <= 0) return true;
        var now = time.GetTimestamp();
        while (true)
        {
            var entry = EntryOf(key, now);
            lock (entry)
            {
                if (entry.Removed) continue;
                if (entry.Watches >= options.WatchesPerClient) return false;
                entry.Watches++;
                slot = new WatchSlot(entry);
                return true;
            }
        }
    }

    /// <summary>Open watches counted for <paramref name="key"/>.</summary>
    public int OpenWatches(string key) => _clients.TryGetValue(key, out var entry) ? Volatile.Read(ref entry.Watches) : 0;

    /// <summary>One open watch; an entry holding one is never removed.</summary>
    public readonly struct WatchSlot : IDisposable
    {
        private readonly Entry? _entry;

        internal WatchSlot(Entry entry) => _entry = entry;

        public void Dispose()
        {
            if (_entry is { } entry)
            {
                lock (entry) entry.Watches--;
            }
        }
    }

    private Entry EntryOf(string key, long now)
    {
        if (_clients.TryGetValue(key, out var entry)) return entry;
        if (_clients.Count >= options.MaxClients)
        {
            Sweep(now);
            if (_clients.Count >= options.MaxClients) return _clients.GetOrAdd(OverflowKey, _ => new Entry(_burst, now));
        }
        return _clients.GetOrAdd(key, static (_, state) => new Entry(state.Burst, state.Now), (Burst: _burst, Now: now));
    }

    /// <summary>Removes the entries a new one would equal: bucket full, no watch open.</summary>
    private void Sweep(long now)
    {
        if (Interlocked.Exchange(ref _sweeping, 1) == 1) return;
        try
        {
            foreach (var (key, entry) in _clients)
            {
                lock (entry)
                {
                    Refill(entry, now);
                    if (entry.Watches > 0 || entry.Tokens < _burst || key == OverflowKey) continue;
                    entry.Removed = true;
                }
                _clients.TryRemove(new KeyValuePair<string, Entry>(key, entry));
            }
        }
        finally
        {
            Volatile.Write(ref _sweeping, 0);
        }
    }

    private void Refill(Entry entry, long now)
    {
        if (_rate <= 0) { entry.Tokens = _burst; return; }
        var elapsed = time.GetElapsedTime(entry.Stamp, now).TotalSeconds;
        if (elapsed > 0)
        {
            entry.Tokens = Math.Min(_burst, entry.Tokens + elapsed * _rate);
            entry.Stamp = now;
        }
    }

    internal sealed class Entry(double tokens, long stamp)
    {
        public double Tokens = tokens;
        public long Stamp = stamp;
        public int Watches;
        public bool Removed;
    }
}
