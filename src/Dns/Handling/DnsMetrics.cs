using System.Diagnostics.Metrics;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Handling;

/// <summary>
/// The DNS server's counters, kept as plain integers incremented with Interlocked (nothing
/// allocated per query) and published through the meter "ControlPlane.Dns" as observable
/// counters, read only when metrics are collected:
/// <list type="bullet">
/// <item><c>controlplane.dns.queries{type,rcode}</c>: messages answered, by question type and response code;</item>
/// <item><c>controlplane.dns.truncated</c>: responses sent with TC set because they did not fit;</item>
/// <item><c>controlplane.dns.dropped{reason}</c>: messages not answered ("malformed": too short or a
/// response; "rate_limit": response rate limiting);</item>
/// <item><c>controlplane.dns.rate_limit.slipped</c>: rate-limited responses sent truncated instead of dropped;</item>
/// <item><c>controlplane.dns.forwarded{outcome}</c>: queries sent upstream ("answered", "failed");</item>
/// <item><c>controlplane.dns.forwarding.refused</c>: names outside our zones REFUSED to a client not allowed recursion;</item>
/// <item><c>controlplane.dns.cache.lookups{result}</c>: the forwarder's answer cache ("hit", "miss").</item>
/// </list>
/// </summary>
public sealed class DnsMetrics : IDisposable
{
    public const string MeterName = "ControlPlane.Dns";

    private const int Types = 256;
    private const int Rcodes = 32;

    // Types 1-255 by name (RFC 3597's TYPEn where unnamed); slot 0 takes the reserved type 0 and
    // every type above 255, as "other": a fixed set of label values whatever clients send.
    private static readonly string[] TypeNames = [.. Enumerable.Range(0, Types).Select(t => t == 0 ? "other" : Enum.IsDefined((DnsType)t) ? ((DnsType)t).ToString() : $"TYPE{t}")];
    private static readonly string[] RcodeNames = [.. Enumerable.Range(0, Rcodes).Select(r => r == 16 ? "BADVERS" : Enum.IsDefined((Rcode)r) ? ((Rcode)r).ToString().ToUpperInvariant() : $"RCODE{r}")];

    private readonly long[] _queries = new long[Types * Rcodes];
    private long _dropped;
    private long _rateLimited;
    private long _slipped;
    private long _truncated;
    private long _forwarded;
    private long _forwardFailed;
    private long _forwardingRefused;
    private long _cacheHits;
    private long _cacheMisses;

    public DnsMetrics()
    {
        Meter = new Meter(MeterName);
        Meter.CreateObservableCounter("controlplane.dns.queries", ObserveQueries, "{query}", "DNS responses sent (rate-limited drops excluded), by question type and response code");
        Meter.CreateObservableCounter("controlplane.dns.truncated", () => Volatile.Read(ref _truncated), "{response}", "Responses sent truncated (TC) because they did not fit");
        Meter.CreateObservableCounter("controlplane.dns.dropped", () => (Measurement<long>[])
            [
                new(Volatile.Read(ref _dropped), new KeyValuePair<string, object?>("reason", "malformed")),
                new(Volatile.Read(ref _rateLimited), new KeyValuePair<string, object?>("reason", "rate_limit")),
            ], "{query}", "Queries not answered");
        Meter.CreateObservableCounter("controlplane.dns.rate_limit.slipped", () => Volatile.Read(ref _slipped), "{response}", "Rate-limited responses sent truncated instead of dropped");
        Meter.CreateObservableCounter("controlplane.dns.forwarded", () => (Measurement<long>[])
            [
                new(Volatile.Read(ref _forwarded), new KeyValuePair<string, object?>("outcome", "answered")),
                new(Volatile.Read(ref _forwardFailed), new KeyValuePair<string, object?>("outcome", "failed")),
            ], "{query}", "Queries sent to the upstream servers");
        Meter.CreateObservableCounter("controlplane.dns.forwarding.refused", () => Volatile.Read(ref _forwardingRefused), "{query}", "Names outside our zones refused to clients not allowed recursion");
        Meter.CreateObservableCounter("controlplane.dns.cache.lookups", () => (Measurement<long>[])
            [
                new(Volatile.Read(ref _cacheHits), new KeyValuePair<string, object?>("result", "hit")),
                new(Volatile.Read(ref _cacheMisses), new KeyValuePair<string, object?>("result", "miss")),
            ], "{lookup}", "Lookups in the forwarder's answer cache");
    }

    /// <summary>The meter the instruments belong to (one per handler).</summary>
    public Meter Meter { get; }

    internal void Count(ushort type, int rcode) => Interlocked.Increment(ref _queries[Slot(type, rcode)]);

    /// <summary>
    /// The response counted as (<paramref name="type"/>, <paramref name="rcode"/>) was not sent: the
    /// rate limiter dropped it. It moves from the queries to the rate-limited drops.
    /// </summary>
    internal void RateLimited(ushort type, int rcode)
    {
        Interlocked.Decrement(ref _queries[Slot(type, rcode)]);
        Interlocked.Increment(ref _rateLimited);
    }

    private static int Slot(ushort type, int rcode) => (type < Types ? type : 0) * Rcodes + (rcode & (Rcodes - 1));

    internal void Dropped() => Interlocked.Increment(ref _dropped);

    internal void Slipped() => Interlocked.Increment(ref _slipped);

    internal void Truncated() => Interlocked.Increment(ref _truncated);

    internal void Forwarded(bool answered) => Interlocked.Increment(ref (answered ? ref _forwarded : ref _forwardFailed));

    internal void ForwardingRefused() => Interlocked.Increment(ref _forwardingRefused);

    internal void CacheLookup(bool hit) => Interlocked.Increment(ref (hit ? ref _cacheHits : ref _cacheMisses));

    public long Queries(DnsType type)
    {
        var total = 0L;
        for (var r = 0; r < Rcodes; r++) total += Volatile.Read(ref _queries[((int)type & (Types - 1)) * Rcodes + r]);
        return total;
    }

    public long Responses(Rcode rcode) => Responses((int)rcode);

    private long Responses(int rcode)
    {
        var total = 0L;
        for (var t = 0; t < Types; t++) total += Volatile.Read(ref _queries[t * Rcodes + rcode]);
        return total;
    }

    /// <summary>Malformed messages dropped (rate-limited responses are <see cref="RateLimitedCount"/>).</summary>
    public long DroppedCount => Volatile.Read(ref _dropped);

    public long RateLimitedCount => Volatile.Read(ref _rateLimited);

    public long SlippedCount => Volatile.Read(ref _slipped);

    public long ForwardingRefusedCount => Volatile.Read(ref _forwardingRefused);

    /// <summary>Every message handled: answered with any rcode, or dropped (malformed or rate limited).</summary>
    public long Total
    {
        get
        {
            var total = DroppedCount + RateLimitedCount;
            for (var i = 0; i < _queries.Length; i++) total += Volatile.Read(ref _queries[i]);
            return total;
        }
    }

    public long TruncatedCount => Volatile.Read(ref _truncated);

    /// <summary>A one-line summary for logs.</summary>
    public string Summary()
    {
        var types = Enum.GetValues<DnsType>().Where(t => Queries(t) > 0).Select(t => $"{t}={Queries(t)}");
        var rcodes = Enum.GetValues<Rcode>().Where(r => Responses(r) > 0).Select(r => $"{r}={Responses(r)}");
        return $"queries [{string.Join(' ', types)}] responses [{string.Join(' ', rcodes)}] dropped={DroppedCount} rate-limited={RateLimitedCount} slipped={SlippedCount} truncated={TruncatedCount}";
    }

    private IEnumerable<Measurement<long>> ObserveQueries()
    {
        for (var t = 0; t < Types; t++)
        {
            for (var r = 0; r < Rcodes; r++)
            {
                var count = Volatile.Read(ref _queries[t * Rcodes + r]);
                if (count > 0)
                {
                    yield return new Measurement<long>(count, new KeyValuePair<string, object?>("type", TypeNames[t]), new KeyValuePair<string, object?>("rcode", RcodeNames[r]));
                }
            }
        }
    }

    public void Dispose() => Meter.Dispose();
}
