using System.Diagnostics;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Tests;

/// <summary>Dns:TraceQueries: a span per query when on; when off nothing, and no allocation, even while a tracer listens.</summary>
public sealed class QueryTraceTests
{
    private static QueryHandler Handler(bool trace) => new(ZoneSnapshot.Build(ZoneFile.Parse("""
        $ORIGIN cluster.local.
        $TTL 30
        @ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        web.shop.svc IN A 10.96.0.20
        """))) { TraceQueries = trace };

    private static (ActivityListener Listener, List<Activity> Stopped) Listen()
    {
        var stopped = new List<Activity>();
        var listener = new ActivityListener
        {
            ShouldListenTo = s => s.Name == QueryTrace.Name,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllDataAndRecorded,
            ActivityStopped = a => { lock (stopped) stopped.Add(a); },
        };
        ActivitySource.AddActivityListener(listener);
        return (listener, stopped);
    }

    [Fact]
    public void Handle_TraceQueriesOn_OneSpanPerQueryWithItsRcode()
    {
        var (listener, stopped) = Listen();
        using var _ = listener;
        var handler = Handler(trace: true);
        var response = new byte[1232];
        handler.Handle(Queries.Build("web.shop.svc.cluster.local", DnsType.A), response, tcp: false);
        handler.Handle(Queries.Build("nope.shop.svc.cluster.local", DnsType.A), response, tcp: true);

        lock (stopped)
        {
            Assert.Equal(2, stopped.Count);
            Assert.All(stopped, a => Assert.Equal("dns.query", a.OperationName));
            Assert.Equal([(int)Rcode.NoError, (int)Rcode.NXDomain], stopped.Select(a => (int)a.GetTagItem("dns.rcode")!));
            Assert.Equal(["udp", "tcp"], stopped.Select(a => (string)a.GetTagItem("network.transport")!));
            // The question, as an operator looks for a slow or failing name.
            Assert.Equal(["web.shop.svc.cluster.local.", "nope.shop.svc.cluster.local."], stopped.Select(a => (string)a.GetTagItem("dns.question.name")!));
            Assert.All(stopped, a => Assert.Equal((int)DnsType.A, (int)a.GetTagItem("dns.question.type")!));
        }
    }

    [Fact]
    public void Handle_TraceQueriesOff_NoSpanAndNoAllocation_WhileATracerListens()
    {
        var (listener, stopped) = Listen();
        using var _ = listener;
        var handler = Handler(trace: false);
        var query = Queries.Build("web.shop.svc.cluster.local", DnsType.A);
        var response = new byte[1232];
        handler.Handle(query, response, tcp: false);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++) handler.Handle(query, response, tcp: false);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
        lock (stopped) Assert.Empty(stopped);
    }
}
