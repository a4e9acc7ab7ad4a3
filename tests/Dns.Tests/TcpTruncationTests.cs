using System.Text;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// An answer larger than a DNS message can hold (64 KiB): over UDP, TC and no records, so the
/// client asks again over TCP; over TCP, where nothing better can come, the whole records that
/// fit, with TC set.
/// </summary>
public sealed class TcpTruncationTests
{
    private const int Records = 5000; // 16 bytes each in the answer: about 80 KB

    private static QueryHandler Handler()
    {
        var zone = new StringBuilder("$ORIGIN cluster.local.\n@ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5\n");
        for (var i = 0; i < Records; i++) zone.Append($"huge.shop.svc 30 IN A 10.{i / 65536 + 1}.{i / 256 % 256}.{i % 256}\n");
        zone.Append("small.shop.svc 30 IN A 10.96.0.9\n");
        return new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(zone.ToString())));
    }

    [Fact]
    public void OverTcp_AnAnswerLargerThanAMessage_KeepsTheWholeRecordsThatFit_WithTc()
    {
        var handler = Handler();
        var response = new byte[65535];

        var length = handler.Handle(Queries.Build("huge.shop.svc.cluster.local", DnsType.A), response, tcp: true);

        var decoded = DecodedResponse.Decode(response.AsSpan(0, length));
        Assert.True(decoded.Truncated);
        Assert.Equal(0, decoded.Rcode);
        Assert.InRange(decoded.Answer.Count, Records / 2, Records - 1);
        Assert.All(decoded.Answer, r => Assert.Matches(@"^huge\.shop\.svc\.cluster\.local\. 30 IN A 10\.\d+\.\d+\.\d+$", r));
        Assert.True(length > 65535 - 16 - 11, $"only {length} bytes used");

        // A small answer over TCP is whole and not truncated, and over UDP the large one is TC without records.
        var small = DecodedResponse.Decode(response.AsSpan(0, handler.Handle(Queries.Build("small.shop.svc.cluster.local", DnsType.A), response, tcp: true)));
        Assert.False(small.Truncated);
        Assert.Single(small.Answer);
        var udp = DecodedResponse.Decode(response.AsSpan(0, handler.Handle(Queries.Build("huge.shop.svc.cluster.local", DnsType.A), response.AsSpan(0, 512), tcp: false)));
        Assert.True(udp.Truncated);
        Assert.Empty(udp.Answer);
    }
}
