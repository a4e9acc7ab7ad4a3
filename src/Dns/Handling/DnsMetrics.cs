using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Handling;

/// <summary>Query counters by type and by response code; lock-free increments.</summary>
public sealed class DnsMetrics
{
    private readonly long[] _byType = new long[256];
    private readonly long[] _byRcode = new long[32];
    private long _dropped;
    private long _truncated;

    internal void Count(ushort type, int rcode)
    {
        Interlocked.Increment(ref _byType[type < 256 ? type : 0]);
        Interlocked.Increment(ref _byRcode[rcode & 31]);
    }

    internal void Dropped() => Interlocked.Increment(ref _dropped);

    internal void Truncated() => Interlocked.Increment(ref _truncated);

    public long Queries(DnsType type) => Volatile.Read(ref _byType[(int)type & 255]);

    public long Responses(Rcode rcode) => Volatile.Read(ref _byRcode[(int)rcode]);

    public long DroppedCount => Volatile.Read(ref _dropped);

    /// <summary>Every message handled: answered with any rcode, or dropped.</summary>
    public long Total => _byRcode.Sum(c => Volatile.Read(ref c)) + DroppedCount;

    public long TruncatedCount => Volatile.Read(ref _truncated);

    /// <summary>A one-line summary for logs.</summary>
    public string Summary()
    {
        var types = Enum.GetValues<DnsType>().Where(t => Queries(t) > 0).Select(t => $"{t}={Queries(t)}");
        var rcodes = Enum.GetValues<Rcode>().Where(r => Responses(r) > 0).Select(r => $"{r}={Responses(r)}");
        return $"queries [{string.Join(' ', types)}] responses [{string.Join(' ', rcodes)}] dropped={DroppedCount} truncated={TruncatedCount}";
    }
}
