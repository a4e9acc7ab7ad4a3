using System.Diagnostics.Metrics;
using System.Net;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Dns.Tests;

/// <summary>The meter ControlPlane.Dns: its counters move as queries are answered.</summary>
public sealed class DnsMetricsTests
{
    private const string Zone = """
        $ORIGIN cluster.local.
        @ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        web.shop.svc 30 IN A 10.96.0.20
        big.shop.svc 30 IN TXT "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
        big.shop.svc 30 IN TXT "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
        big.shop.svc 30 IN TXT "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
        """;

    [Fact]
    public void Counters_MoveAsQueriesAreAnswered()
    {
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Zone)))
        {
            RateLimiter = new ResponseRateLimiter(new ResponseRateLimitOptions { ResponsesPerSecond = 1, Slip = 2 }, new FakeTimeProvider()),
        };
        var seen = new Dictionary<string, long>();
        using var listener = new MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (ReferenceEquals(instrument.Meter, handler.Metrics.Meter)) l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((instrument, value, tags, _) =>
        {
            var key = instrument.Name + string.Concat(tags.ToArray().OrderBy(t => t.Key).Select(t => $",{t.Key}={t.Value}"));
            lock (seen) seen[key] = value;
        });
        listener.Start();

        var response = new byte[65535];
        var client = new IPEndPoint(IPAddress.Parse("10.9.9.9"), 1000).Serialize();
        handler.Handle(Queries.Build("web.shop.svc.cluster.local", DnsType.A), response, tcp: true);
        handler.Handle(Queries.Build("web.shop.svc.cluster.local", DnsType.A), response, tcp: true);
        handler.Handle(Queries.Build("nope.shop.svc.cluster.local", DnsType.AAAA), response, tcp: true);
        handler.Handle(Queries.Build("www.example.test", DnsType.A), response, tcp: true); // no forwarder: REFUSED
        handler.Handle(Queries.Build("big.shop.svc.cluster.local", DnsType.TXT), response.AsSpan(0, 512), tcp: false); // over 512: TC
        handler.Handle(Queries.Build("web.shop.svc.cluster.local", (DnsType)60001), response, tcp: true); // a type above 255: "other"
        handler.Handle(Queries.Build("web.shop.svc.cluster.local", (DnsType)200), response, tcp: true); // unnamed below 256: RFC 3597's TYPEn
        handler.Handle([1, 2, 3], response, tcp: false); // shorter than a header: dropped
        for (var i = 0; i < 3; i++) handler.Handle(Queries.Build("web.shop.svc.cluster.local", DnsType.A), response.AsSpan(0, 512), tcp: false, client.Buffer.Span[..client.Size]);
        listener.RecordObservableInstruments();

        // Two over TCP, then one sent and one slipped over UDP; the third UDP one was dropped by the
        // rate limiter and is counted only there.
        Assert.Equal(4, seen["controlplane.dns.queries,rcode=NOERROR,type=A"]);
        Assert.Equal(1, seen["controlplane.dns.queries,rcode=NXDOMAIN,type=AAAA"]);
        Assert.Equal(1, seen["controlplane.dns.queries,rcode=REFUSED,type=A"]);
        Assert.Equal(1, seen["controlplane.dns.queries,rcode=NOERROR,type=TXT"]);
        Assert.Equal(1, seen["controlplane.dns.queries,rcode=NOERROR,type=other"]);
        Assert.Equal(1, seen["controlplane.dns.queries,rcode=NOERROR,type=TYPE200"]);
        Assert.DoesNotContain(seen.Keys, k => k.Contains("type=TYPE0", StringComparison.Ordinal));
        Assert.Equal(1, seen["controlplane.dns.truncated"]);
        Assert.Equal(1, seen["controlplane.dns.dropped,reason=malformed"]);
        Assert.Equal(1, seen["controlplane.dns.dropped,reason=rate_limit"]);
        Assert.Equal(1, seen["controlplane.dns.rate_limit.slipped"]);
        Assert.Equal(0, seen["controlplane.dns.forwarding.refused"]);
        Assert.Equal(0, seen["controlplane.dns.cache.lookups,result=hit"]);
        Assert.Equal(0, seen["controlplane.dns.forwarded,outcome=answered"]);
    }
}
