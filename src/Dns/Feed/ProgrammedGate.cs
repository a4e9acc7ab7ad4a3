namespace ControlPlane.Dns.Feed;

/// <summary>
/// Convergence-aware publishing (Dns:WaitForProgrammed): an address enters DNS only once the
/// objects it depends on are programmed on every counted node (the control plane's PROGRAMMED
/// watch events), or once <see cref="Bound"/> has passed since it appeared (a late publish,
/// counted). Each object is gated from one revision on, chosen by the caller: the revision its
/// addresses appeared at. Pure logic; the feed calls it under its lock.
/// </summary>
public sealed class ProgrammedGate(TimeSpan bound, TimeProvider time)
{
    private sealed class Entry
    {
        public long Programmed;
        public long Since;
        public long SeenAt;
        public bool Late;
    }

    private readonly Dictionary<string, Entry> _entries = new(StringComparer.Ordinal);

    public TimeSpan Bound { get; } = bound;

    /// <summary>Addresses published because the bound passed before every node had programmed them.</summary>
    public long LatePublishes { get; private set; }

    /// <summary>Every counted node has programmed <paramref name="revision"/> of the object <paramref name="key"/>.</summary>
    public void Programmed(string key, long revision)
    {
        var entry = Get(key);
        entry.Programmed = Math.Max(entry.Programmed, revision);
    }

    /// <summary>The object exists at <paramref name="revision"/> and is known published (listed at start): nothing to wait for.</summary>
    public void Published(string key, long revision)
    {
        var entry = Get(key);
        entry.Programmed = Math.Max(entry.Programmed, revision);
        entry.Since = revision;
    }

    public void Removed(string key) => _entries.Remove(key);

    /// <summary>
    /// Whether <paramref name="key"/> may be published, gated from <paramref name="since"/> on
    /// (a new <paramref name="since"/> starts the bound again).
    /// </summary>
    public bool Ready(string key, long since)
    {
        var entry = Get(key);
        if (entry.Since != since)
        {
            (entry.Since, entry.SeenAt, entry.Late) = (since, time.GetTimestamp(), false);
        }
        if (entry.Programmed >= since) return true;
        if (time.GetElapsedTime(entry.SeenAt) < Bound) return false;
        if (!entry.Late)
        {
            entry.Late = true;
            LatePublishes++;
        }
        return true;
    }

    /// <summary>How long until the first waiting object's bound passes, or null when none waits.</summary>
    public TimeSpan? NextBound()
    {
        TimeSpan? next = null;
        foreach (var entry in _entries.Values)
        {
            if (entry.Programmed >= entry.Since || entry.Late || entry.SeenAt == 0) continue;
            var left = Bound - time.GetElapsedTime(entry.SeenAt);
            if (next is null || left < next) next = left;
        }
        return next is { } t && t < TimeSpan.Zero ? TimeSpan.Zero : next;
    }

    private Entry Get(string key)
    {
        if (!_entries.TryGetValue(key, out var entry)) _entries[key] = entry = new Entry();
        return entry;
    }
}
