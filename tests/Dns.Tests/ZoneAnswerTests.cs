using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Tests;

/// <summary>Answers for a zone written as zone-file text, checked as zone-file text (CoreDNS-style tables).</summary>
public sealed class ZoneAnswerTests
{
    private const string Zone = """
        $ORIGIN cluster.local.
        $TTL 30
        @ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. (
                 7      ; serial
                 7200 1800 86400
                 5 )    ; negative TTL
        @            IN NS    ns.dns.cluster.local.
        web.shop.svc IN A     10.96.0.20
                     IN AAAA  fd00:96::20
        _http._tcp.web.shop.svc IN SRV 0 100 80 web.shop.svc.cluster.local.
        db.shop.svc  IN A     10.244.1.2
        db.shop.svc  IN A     10.244.2.3
        ext.shop.svc 60 IN CNAME example.org.
        alias.shop.svc IN CNAME web.shop.svc.cluster.local.
        chain.shop.svc IN CNAME Alias.Shop.svc.cluster.local.
        gone.shop.svc IN CNAME nope.shop.svc.cluster.local.
        dns-version  IN TXT   "1.1.0"
        """;

    private const string Soa = "cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 5";

    private static readonly QueryHandler Handler = new(ZoneSnapshot.Build(ZoneFile.Parse(Zone)));

    public static TheoryData<string, DnsType, int, string[], string[]> Cases => new()
    {
        { "web.shop.svc.cluster.local", DnsType.A, 0, ["web.shop.svc.cluster.local. 30 IN A 10.96.0.20"], [] },
        { "web.shop.svc.cluster.local", DnsType.AAAA, 0, ["web.shop.svc.cluster.local. 30 IN AAAA fd00:96::20"], [] },
        { "_http._tcp.web.shop.svc.cluster.local", DnsType.SRV, 0, ["_http._tcp.web.shop.svc.cluster.local. 30 IN SRV 0 100 80 web.shop.svc.cluster.local."], [] },
        { "db.shop.svc.cluster.local", DnsType.A, 0, ["db.shop.svc.cluster.local. 30 IN A 10.244.1.2", "db.shop.svc.cluster.local. 30 IN A 10.244.2.3"], [] },
        { "ext.shop.svc.cluster.local", DnsType.A, 0, ["ext.shop.svc.cluster.local. 60 IN CNAME example.org."], [] },
        // Aliases into the zone are chased: the target's records follow, NODATA and NXDOMAIN are the target's.
        { "alias.shop.svc.cluster.local", DnsType.A, 0, ["alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.", "web.shop.svc.cluster.local. 30 IN A 10.96.0.20"], [] },
        { "chain.shop.svc.cluster.local", DnsType.AAAA, 0, ["chain.shop.svc.cluster.local. 30 IN CNAME alias.shop.svc.cluster.local.", "alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.", "web.shop.svc.cluster.local. 30 IN AAAA fd00:96::20"], [] },
        { "alias.shop.svc.cluster.local", DnsType.TXT, 0, ["alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local."], [Soa] },
        { "gone.shop.svc.cluster.local", DnsType.A, 3, ["gone.shop.svc.cluster.local. 30 IN CNAME nope.shop.svc.cluster.local."], [Soa] },
        { "alias.shop.svc.cluster.local", DnsType.CNAME, 0, ["alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local."], [] },
        { "dns-version.cluster.local", DnsType.TXT, 0, ["dns-version.cluster.local. 30 IN TXT \"1.1.0\""], [] },
        { "cluster.local", DnsType.NS, 0, ["cluster.local. 30 IN NS ns.dns.cluster.local."], [] },
        // NODATA: the name exists (also as an empty non-terminal), not the type.
        { "web.shop.svc.cluster.local", DnsType.TXT, 0, [], [Soa] },
        { "shop.svc.cluster.local", DnsType.A, 0, [], [Soa] },
        { "svc.cluster.local", DnsType.A, 0, [], [Soa] },
        // NXDOMAIN.
        { "nope.shop.svc.cluster.local", DnsType.A, 3, [], [Soa] },
        { "cluster.local.cluster.local", DnsType.A, 3, [], [Soa] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Lookup_AnswersAsTheZoneSays(string name, DnsType type, int rcode, string[] answer, string[] authority)
    {
        var response = Ask(Queries.Build(name, type));

        Assert.Equal(rcode, response.Rcode);
        Assert.True(response.Authoritative);
        Assert.Equal(answer.Order(), response.Answer.Order());
        Assert.Equal(authority, response.Authority);
    }

    [Fact]
    public void Question_IsEchoedInTheClientsLetterCase()
    {
        var response = Ask(Queries.Build("WeB.Shop.SVC.Cluster.Local", DnsType.A));

        Assert.Equal("web.shop.svc.cluster.local", response.Question); // the decoder lower-cases
        Assert.Equal(["web.shop.svc.cluster.local. 30 IN A 10.96.0.20"], response.Answer);
        var raw = Raw(Queries.Build("WeB.Shop.SVC.Cluster.Local", DnsType.A));
        Assert.Contains("WeB", System.Text.Encoding.ASCII.GetString(raw));
    }

    [Fact]
    public void OutsideTheZones_IsRefusedWithoutRecursion()
    {
        var response = Ask(Queries.Build("example.org", DnsType.A));
        Assert.Equal((int)Rcode.Refused, response.Rcode);
        Assert.False(response.Authoritative);
        Assert.Empty(response.Answer);
    }

    [Fact]
    public void Unsynced_AnswersServFail_ButStillRefusesForeignNames()
    {
        var handler = new QueryHandler(ZoneSnapshot.Unsynced(["cluster.local"]));
        Assert.Equal((int)Rcode.ServFail, Decode(handler, Queries.Build("web.shop.svc.cluster.local", DnsType.A)).Rcode);
        Assert.Equal((int)Rcode.Refused, Decode(handler, Queries.Build("example.org", DnsType.A)).Rcode);
    }

    /// <summary>
    /// SRV answers carry their targets' addresses in the additional section (RFC 2782), owned by
    /// pointers to the targets in the answer; the address sets that would not fit are left out
    /// whole, and the answer is not truncated (RFC 2181 §9).
    /// </summary>
    [Fact]
    public void Srv_CarriesItsTargetsAddresses_AndLeavesOutWhatDoesNotFitRatherThanTruncate()
    {
        var srv = Ask(Queries.Build("_http._tcp.web.shop.svc.cluster.local", DnsType.SRV));
        Assert.Equal(["web.shop.svc.cluster.local. 30 IN A 10.96.0.20", "web.shop.svc.cluster.local. 30 IN AAAA fd00:96::20"], srv.Additional);
        Assert.Empty(Ask(Queries.Build("web.shop.svc.cluster.local", DnsType.A)).Additional);

        var lines = string.Join('\n', Enumerable.Range(1, 8).Select(i =>
            $"_x._tcp.many.shop.svc IN SRV 0 100 80 t{i}.shop.svc.cluster.local.\nt{i}.shop.svc IN A 10.244.8.{i}"));
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Zone + "\n" + lines)));
        var plain = Decode(handler, Queries.Build("_x._tcp.many.shop.svc.cluster.local", DnsType.SRV));
        Assert.False(plain.Truncated);
        Assert.Equal(8, plain.Answer.Count);
        // The question and 8 answers take 413 of 512 bytes: the first 6 addresses (16 bytes each) fit.
        Assert.Equal(Enumerable.Range(1, 6).Select(i => $"t{i}.shop.svc.cluster.local. 30 IN A 10.244.8.{i}"), plain.Additional);
        var edns = Decode(handler, Queries.Build("_x._tcp.many.shop.svc.cluster.local", DnsType.SRV, ednsSize: 4096));
        Assert.Equal(8, edns.Additional.Count);
        Assert.Equal(413 + 8 * 16 + 11, Raw(handler, Queries.Build("_x._tcp.many.shop.svc.cluster.local", DnsType.SRV, ednsSize: 4096)).Length);
        Assert.Contains("t3.shop.svc.cluster.local. 30 IN A 10.244.8.3", edns.Additional);
        Assert.True(edns.HasOpt);

        // NS answers the same way, for a name server whose address is in the zone.
        Assert.Empty(Ask(Queries.Build("cluster.local", DnsType.NS)).Additional);
        var withServer = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Zone + "\nns.dns IN A 10.96.0.10")));
        Assert.Equal(["ns.dns.cluster.local. 30 IN A 10.96.0.10"], Decode(withServer, Queries.Build("cluster.local", DnsType.NS)).Additional);
    }

    /// <summary>
    /// Over TCP a large SRV answer keeps its targets' addresses: owners point into the answer while
    /// a pointer reaches (the first 16 KiB of the message), and are written in full after that.
    /// </summary>
    [Fact]
    public void Srv_OverTcp_CarriesTheAddressesOfHundredsOfTargets()
    {
        var lines = string.Join('\n', Enumerable.Range(0, 420).Select(i =>
            $"_p._tcp.big.shop.svc IN SRV 0 100 80 e{i}.big.shop.svc.cluster.local.\ne{i}.big.shop.svc IN A 10.244.{i / 200}.{i % 200 + 1}\ne{i}.big.shop.svc IN AAAA fd00:244::{i:x}"));
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Zone + "\n" + lines)));
        var buffer = new byte[65535];

        var length = handler.Handle(Queries.Build("_p._tcp.big.shop.svc.cluster.local", DnsType.SRV), buffer, tcp: true);
        var answer = DecodedResponse.Decode(buffer.AsSpan(0, length));

        Assert.False(answer.Truncated);
        Assert.Equal(420, answer.Answer.Count);
        Assert.Equal(840, answer.Additional.Count);
        Assert.Contains("e0.big.shop.svc.cluster.local. 30 IN A 10.244.0.1", answer.Additional);
        Assert.Contains("e419.big.shop.svc.cluster.local. 30 IN AAAA fd00:244::1a3", answer.Additional);
    }

    [Fact]
    public void Edns_EchoesOptAndRaisesTheUdpLimit()
    {
        var lines = string.Join('\n', Enumerable.Range(1, 60).Select(i => $"big.shop.svc IN A 10.244.9.{i}"));
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Zone + "\n" + lines)));

        var plain = Decode(handler, Queries.Build("big.shop.svc.cluster.local", DnsType.A));
        Assert.True(plain.Truncated);
        Assert.Empty(plain.Answer);

        var edns = Decode(handler, Queries.Build("big.shop.svc.cluster.local", DnsType.A, ednsSize: 4096));
        Assert.False(edns.Truncated);
        Assert.True(edns.HasOpt);
        Assert.Equal(60, edns.Answer.Count);

        var tcp = new byte[65535];
        var length = handler.Handle(Queries.Build("big.shop.svc.cluster.local", DnsType.A), tcp, tcp: true);
        Assert.Equal(60, DecodedResponse.Decode(tcp.AsSpan(0, length)).Answer.Count);
    }

    [Fact]
    public void EdnsVersionOne_IsBadVers()
    {
        var raw = Raw(Queries.Build("web.shop.svc.cluster.local", DnsType.A, ednsSize: 1232, ednsVersion: 1));
        var response = DecodedResponse.Decode(raw);
        Assert.True(response.HasOpt);
        // Extended rcode 16 = OPT TTL's upper byte 1, header rcode 0.
        Assert.Equal(0, response.Rcode);
        Assert.Equal(1, raw[^6]);
    }

    [Theory]
    [InlineData((ushort)0x2100, (int)Rcode.NotImp)] // opcode 4 (NOTIFY)
    [InlineData((ushort)0x1100, (int)Rcode.NotImp)] // opcode 2 (STATUS)
    public void UnsupportedOpcode_IsNotImp(ushort flags, int rcode) =>
        Assert.Equal(rcode, Ask(Queries.Build("web.shop.svc.cluster.local", DnsType.A, flags: flags)).Rcode);

    /// <summary>Types that exist only inside messages are no question (FORMERR); the obsolete mail query types are not implemented (NOTIMP). Each was answered NODATA but OPT.</summary>
    [Theory]
    [InlineData(DnsType.OPT, (int)Rcode.FormErr)]
    [InlineData(DnsType.TSIG, (int)Rcode.FormErr)]
    [InlineData(DnsType.TKEY, (int)Rcode.FormErr)]
    [InlineData(DnsType.MAILA, (int)Rcode.NotImp)]
    [InlineData(DnsType.MAILB, (int)Rcode.NotImp)]
    public void MetaTypeQuestion_IsFormErrOrNotImp(DnsType type, int rcode) =>
        Assert.Equal(rcode, Ask(Queries.Build("web.shop.svc.cluster.local", type)).Rcode);

    [Fact]
    public void ChaosClassAndZoneTransfers_AreRefused()
    {
        Assert.Equal((int)Rcode.Refused, Ask(Queries.Build("version.bind", DnsType.TXT, @class: 3)).Rcode);
        Assert.Equal((int)Rcode.Refused, Ask(Queries.Build("cluster.local", DnsType.AXFR)).Rcode);
    }

    [Fact]
    public void Any_ReturnsEverySetOfTheName()
    {
        var response = Ask(Queries.Build("web.shop.svc.cluster.local", DnsType.ANY));
        Assert.Equal(2, response.Answer.Count);
    }

    [Fact]
    public void ZoneFile_BadLine_NamesTheLine()
    {
        var error = Assert.Throws<FormatException>(() => ZoneFile.Parse("$ORIGIN x.\n@ IN SOA a. b. 1 2 3 4 5\nhost IN A 999.1.1.1\n"));
        Assert.Contains("line 3", error.Message);
    }

    private static DecodedResponse Ask(byte[] query) => Decode(Handler, query);

    private static byte[] Raw(QueryHandler handler, byte[] query)
    {
        var buffer = new byte[65535];
        return buffer[..handler.Handle(query, buffer, tcp: false)];
    }

    private static byte[] Raw(byte[] query)
    {
        var buffer = new byte[1232];
        return buffer[..Handler.Handle(query, buffer, tcp: false)];
    }

    private static DecodedResponse Decode(QueryHandler handler, byte[] query)
    {
        var buffer = new byte[1232];
        var length = handler.Handle(query, buffer, tcp: false);
        return DecodedResponse.Decode(buffer.AsSpan(0, length));
    }
}
