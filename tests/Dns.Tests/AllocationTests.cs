using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Tests;

/// <summary>The answer paths added for aliases and pod records stay allocation-free, like the rest of the handler.</summary>
public sealed class AllocationTests
{
    [Fact]
    public void Handle_ChasedAliasesPodRecordsAndNegatives_AllocatesNothing()
    {
        var snapshot = ZoneSnapshot.Build(ZoneFile.Parse("""
            $ORIGIN cluster.local.
            $TTL 30
            @ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
            web.shop.svc IN A 10.96.0.20
            alias.shop.svc IN CNAME web.shop.svc.cluster.local.
            chain.shop.svc IN CNAME alias.shop.svc.cluster.local.
            gone.shop.svc IN CNAME nope.shop.svc.cluster.local.
            loop-a.shop.svc IN CNAME loop-b.shop.svc.cluster.local.
            loop-b.shop.svc IN CNAME loop-a.shop.svc.cluster.local.
            """), new PodIndex("cluster.local", 30, [("shop", "10.244.0.5"), ("shop", "fd00:244::5")]));
        var handler = new QueryHandler(snapshot);
        (byte[] Query, int Answers)[] cases =
        [
            (Queries.Build("chain.shop.svc.cluster.local", DnsType.A), 3),
            (Queries.Build("gone.shop.svc.cluster.local", DnsType.A), 1),
            (Queries.Build("loop-a.shop.svc.cluster.local", DnsType.A), 2),
            (Queries.Build("10-244-0-5.shop.pod.cluster.local", DnsType.A), 1),
            (Queries.Build("fd00-244--5.shop.pod.cluster.local", DnsType.AAAA, ednsSize: 1232), 1),
            (Queries.Build("10-244-0-6.shop.pod.cluster.local", DnsType.A), 0),
        ];
        var response = new byte[1232];
        foreach (var (query, answers) in cases)
        {
            Assert.Equal(answers, DecodedResponse.Decode(response.AsSpan(0, handler.Handle(query, response, tcp: false))).Answer.Count);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            foreach (var (query, _) in cases) handler.Handle(query, response, tcp: false);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }
}
