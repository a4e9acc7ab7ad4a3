using System.Net;
using ControlPlane.Dns.Forwarding;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// Forwarded answers, relayed or from the cache, shaped for the client asking: its id, RD, CD
/// and question (letter case kept), RA set and AA clear, TTLs counted down, EDNS only for a
/// client that sent it, and its size limit. The upstream is a fake whose replies the test
/// writes byte by byte (compression pointers, its own OPT, TC).
/// </summary>
public sealed class ForwardedAnswerTests
{
    private const string Cluster = """
        $ORIGIN cluster.local.
        @ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        web.shop.svc 30 IN A 10.96.0.20
        ext.shop.svc 30 IN CNAME other.example.test.
        ext-chain.shop.svc 30 IN CNAME alias.example.test.
        """;

    private const ushort AuthoritativeReply = 0x8500; // QR, AA, RD: what the upstream says of itself must not reach the client

    /// <summary>
    /// www.example.test: an alias to host.example.test (its data compressed against the question),
    /// the host's address, an NS in the authority and its address in the additional section, then
    /// the upstream's OPT. big.example.test: 60 addresses (about 1 KB). huge.example.test: TC over
    /// UDP, 200 addresses over TCP.
    /// </summary>
    private static byte[]? Answer(FakeQuery query)
    {
        var reply = query.Reply(AuthoritativeReply);
        switch (query.Name)
        {
            case "www.example.test":
                var hostAt = reply.Offset(0, ReplyBuilder.QuestionName);
                reply.Answer(ReplyBuilder.QuestionName, DnsType.CNAME, 300, [4, .. "host"u8, 0xC0, 0x10]); // host + pointer to example.test
                reply.Answer([0xC0, (byte)hostAt], DnsType.A, 100, [198, 51, 100, 7]);
                var nsAt = reply.Offset(1, [0xC0, 0x10]);
                reply.Record(1, [0xC0, 0x10], DnsType.NS, 600, [2, .. "ns"u8, 0xC0, 0x10]);
                reply.Record(2, [0xC0, (byte)nsAt], DnsType.A, 600, [198, 51, 100, 53]);
                return reply.Opt(dnssecOk: true).Build();
            case "big.example.test":
                for (var i = 0; i < 60; i++) reply.Answer(ReplyBuilder.QuestionName, DnsType.A, 300, [198, 51, 100, (byte)i]);
                return reply.Opt().Build();
            case "huge.example.test" when !query.OverTcp:
                return query.Reply(AuthoritativeReply | 0x0200).Opt().Build();
            case "huge.example.test":
                for (var i = 0; i < 200; i++) reply.Answer(ReplyBuilder.QuestionName, DnsType.A, 300, [192, 0, 3, (byte)i]);
                return reply.Build();
            case "nx.example.test":
                return query.Reply(AuthoritativeReply | 3).Record(1, DnsName.Encode("example.test"), DnsType.SOA, 300, Soa(minimum: 60)).Build();
            case "nodata.example.test":
                return reply.Record(1, DnsName.Encode("example.test"), DnsType.SOA, 300, Soa(minimum: 60)).Build();
            case "forever.example.test":
                return reply.Answer(ReplyBuilder.QuestionName, DnsType.A, int.MaxValue, [198, 51, 100, 1]).Build();
            case "msb.example.test":
                return reply.Answer(ReplyBuilder.QuestionName, DnsType.A, 0x8000_0000 | 100, [198, 51, 100, 2]).Build();
            case "other.example.test":
                // The address asked for, and one for a name nobody asked about.
                return reply.Answer(ReplyBuilder.QuestionName, DnsType.A, 300, [198, 51, 100, 9])
                    .Answer(DnsName.Encode("evil.example.test"), DnsType.A, 300, [6, 6, 6, 6]).Build();
            case "alias.example.test":
                // The upstream's own alias, the stranger between, the target's address after it (owner in upper case).
                return reply.Answer(ReplyBuilder.QuestionName, DnsType.CNAME, 300, DnsName.Encode("host2.example.test"))
                    .Answer(DnsName.Encode("evil.example.test"), DnsType.A, 300, [6, 6, 6, 6])
                    .Answer(DnsName.Encode("HOST2.EXAMPLE.TEST"), DnsType.A, 300, [198, 51, 100, 10]).Build();
            default:
                return query.Reply(AuthoritativeReply | 3).Build(); // NXDOMAIN, no SOA: not cached
        }
    }

    /// <summary>example.test's SOA data: names in full, serial 1, the given MINIMUM.</summary>
    private static byte[] Soa(uint minimum)
    {
        var numbers = new byte[20];
        uint[] fields = [1, 7200, 1800, 86400, minimum];
        for (var i = 0; i < fields.Length; i++) System.Buffers.Binary.BinaryPrimitives.WriteUInt32BigEndian(numbers.AsSpan(4 * i), fields[i]);
        return [.. DnsName.Encode("ns.example.test"), .. DnsName.Encode("hostmaster.example.test"), .. numbers];
    }

    private sealed record Server(DnsListener Listener, QueryHandler Handler, Forwarder Forwarder, FakeTimeProvider Time, FakeUpstream Upstream) : IAsyncDisposable
    {
        public async Task<DigOutput> AskAsync(string tool, params string[] args) => Dig.Parse(await Dig.RunAsync(Listener.LocalEndPoint, tool, args));

        public async ValueTask DisposeAsync()
        {
            await Listener.DisposeAsync();
            await Upstream.DisposeAsync();
        }
    }

    private static Server Start()
    {
        var upstream = new FakeUpstream(Answer);
        var time = new FakeTimeProvider(DateTimeOffset.UnixEpoch.AddDays(20000));
        var forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.EndPoint.ToString()], ForwardTimeout = TimeSpan.FromSeconds(3) }, time);
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster))) { Forwarder = forwarder };
        var listener = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        listener.Start();
        return new Server(listener, handler, forwarder, time, upstream);
    }

    private static string[] WwwAnswer(int cnameTtl, int aTtl) =>
        [$"www.example.test. {cnameTtl} IN CNAME host.example.test.", $"host.example.test. {aTtl} IN A 198.51.100.7"];

    [Fact]
    public async Task CachedAnswer_IsShapedForEachClient_TtlsCountDown_UntilTheSmallestExpires()
    {
        await using var server = Start();

        // First client: EDNS without DO. Our flags and our OPT, not the upstream's (aa, 4096, do).
        var first = await server.AskAsync("dig", "www.example.test", "A");
        Assert.Equal("NOERROR", first.Status);
        Assert.Equal(["qr", "rd", "ra"], first.Flags);
        Assert.Equal(WwwAnswer(300, 100), first.Answer);
        // The upstream's 600 s are more than the cache keeps anything (5 min): 300 is what a client may keep.
        Assert.Equal(["example.test. 300 IN NS ns.example.test."], first.Authority);
        Assert.Matches(@"ns\.example\.test\.\s+300\s+IN\s+A\s+198\.51\.100\.53", first.Text);
        Assert.Contains("flags:; udp: 1232", first.Text);
        var asked = Assert.Single(server.Upstream.Queries);
        Assert.True(asked.Parsed.RecursionDesired);
        Assert.True(asked.Parsed.HasOpt);
        Assert.False(asked.Parsed.DnssecOk);

        // 40 s later, a client without EDNS asking in mixed case: TTLs 40 s lower, its question as
        // it wrote it, no OPT, answered from the cache.
        server.Time.Advance(TimeSpan.FromSeconds(40));
        var second = await server.AskAsync("kdig", "+noedns", "WwW.ExAmple.TEST", "A");
        // (Owners compressed against the question read in the client's letter case.)
        Assert.Equal(WwwAnswer(260, 60).Select(r => r.ToLowerInvariant()), second.Answer.Select(r => r.ToLowerInvariant()));
        Assert.Equal(["example.test. 260 in ns ns.example.test."], second.Authority.Select(r => r.ToLowerInvariant()));
        Assert.Matches(@"198\.51\.100\.53", second.Text);
        Assert.DoesNotContain("EDNS", second.Text);
        Assert.Equal(["qr", "rd", "ra"], second.Flags);
        // The question exactly as sent (0x20 resolvers check it), on a cache hit too.
        var mixed = Queries.Build("WwW.ExAmple.TEST", DnsType.A);
        var response = new byte[512];
        Assert.True(server.Handler.Handle(mixed, response, tcp: false) > mixed.Length);
        Assert.Equal(mixed.AsSpan(12).ToArray(), response.AsSpan(12, mixed.Length - 12).ToArray());
        // Without RD: still answered from the cache, RD clear in the answer.
        var noRecursion = await server.AskAsync("dig", "+norec", "www.example.test", "A");
        Assert.Equal(["qr", "ra"], noRecursion.Flags);
        Assert.Equal(WwwAnswer(260, 60), noRecursion.Answer);
        Assert.Single(server.Upstream.Queries);

        // Without RD and not cached: REFUSED, the upstream not asked (RFC 1034 §4.3.1).
        Assert.Equal("REFUSED", (await server.AskAsync("dig", "+norec", "big.example.test", "A")).Status);
        Assert.Single(server.Upstream.Queries);

        // The A record's 100 s are over: a miss, asked again, fresh TTLs.
        server.Time.Advance(TimeSpan.FromSeconds(61));
        Assert.Equal(WwwAnswer(300, 100), (await server.AskAsync("dig", "www.example.test", "A")).Answer);
        Assert.Equal(2, server.Upstream.Queries.Count);
    }

    [Fact]
    public async Task Edns_FollowsEachClient_AndDoIsPartOfTheQuestion()
    {
        await using var server = Start();

        // No OPT from the client: none in the answer, though the upstream sent one.
        var plain = await server.AskAsync("dig", "+noedns", "www.example.test", "A");
        Assert.Equal(WwwAnswer(300, 100), plain.Answer);
        Assert.DoesNotContain("EDNS", plain.Text);
        // DO set: asked upstream with DO (a different answer may come back), our OPT with DO.
        var dnssec = await server.AskAsync("dig", "+dnssec", "www.example.test", "A");
        Assert.Contains("flags: do; udp: 1232", dnssec.Text);
        Assert.Equal(2, server.Upstream.Queries.Count);
        Assert.True(server.Upstream.Queries[1].Parsed.DnssecOk);
        // A client with EDNS and no DO shares the first answer.
        var edns = await server.AskAsync("kdig", "+edns=0", "+bufsize=4096", "www.example.test", "A");
        Assert.Contains("UDP size: 1232 B", edns.Text);
        Assert.Equal(2, server.Upstream.Queries.Count);

        // The id is the client's: a raw query with a chosen id.
        var response = new byte[512];
        var query = Queries.Build("www.example.test", DnsType.A, id: 0xBEEF);
        var length = server.Handler.Handle(query, response, tcp: false);
        var decoded = DecodedResponse.Decode(response.AsSpan(0, length));
        Assert.Equal(0xBEEF, decoded.Id);
        Assert.False(decoded.Authoritative);
        Assert.False(decoded.HasOpt);
    }

    [Fact]
    public async Task LargeAnswers_FitEachClientsLimit_AndATruncatedUpstreamIsAskedOverTcp()
    {
        await using var server = Start();

        // About 1 KB: too much for a client without EDNS (512), fine with 1232.
        var small = await server.AskAsync("dig", "+noedns", "+ignore", "big.example.test", "A");
        Assert.Contains("tc", small.Flags);
        Assert.Empty(small.Answer);
        Assert.Equal(60, (await server.AskAsync("dig", "+ignore", "big.example.test", "A")).Answer.Count);
        Assert.Equal(60, (await server.AskAsync("kdig", "+tcp", "big.example.test", "A")).Answer.Count);

        // The upstream truncates over UDP: it is asked again over TCP, and a TCP client gets it all.
        var huge = await server.AskAsync("kdig", "+tcp", "huge.example.test", "A");
        Assert.Equal(200, huge.Answer.Count);
        Assert.DoesNotContain("tc", huge.Flags);
        Assert.Contains(server.Upstream.Queries, q => q.OverTcp && q.Name == "huge.example.test");
        // Over UDP it does not fit 1232 bytes: TC, no records, from the cache.
        var asked = server.Upstream.Queries.Count;
        var udp = await server.AskAsync("dig", "+ignore", "huge.example.test", "A");
        Assert.Contains("tc", udp.Flags);
        Assert.Empty(udp.Answer);
        Assert.Equal(asked, server.Upstream.Queries.Count);
    }

    [Fact]
    public async Task CacheHit_AllocatesNothing()
    {
        await using var server = Start();
        Assert.Equal(WwwAnswer(300, 100), (await server.AskAsync("dig", "www.example.test", "A")).Answer);
        Assert.Equal(2, (await server.AskAsync("dig", "ext.shop.svc.cluster.local", "A")).Answer.Count);
        (byte[] Query, int Answers)[] cases =
        [
            (Queries.Build("www.example.test", DnsType.A), 2),
            (Queries.Build("WWW.example.test", DnsType.A, ednsSize: 1232), 2),
            // An alias of ours chased to a cached upstream answer, its chain picked out.
            (Queries.Build("ext.shop.svc.cluster.local", DnsType.A), 2),
        ];
        var response = new byte[1232];
        foreach (var (query, answers) in cases)
        {
            Assert.Equal(answers, DecodedResponse.Decode(response.AsSpan(0, server.Handler.Handle(query, response, tcp: false))).Answer.Count);
        }

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++)
        {
            foreach (var (query, _) in cases) server.Handler.Handle(query, response, tcp: false);
        }
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>
    /// RFC 2308 §5: a negative answer lives min(SOA TTL, SOA MINIMUM) — here 300 and 60. The
    /// cache keeps it that long, and the SOA is shown with that TTL, counting down (as Unbound
    /// shows it), for NXDOMAIN and NODATA alike.
    /// </summary>
    [Fact]
    public async Task NegativeAnswer_LivesForTheSoasNegativeTtl_ShownCountingDown()
    {
        await using var server = Start();
        (string Name, string Status)[] negatives = [("nx.example.test", "NXDOMAIN"), ("nodata.example.test", "NOERROR")];
        static string SoaAt(int ttl) => $"example.test. {ttl} IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60";

        foreach (var (name, status) in negatives)
        {
            var first = await server.AskAsync("dig", name, "A");
            Assert.Equal(status, first.Status);
            Assert.Empty(first.Answer);
            Assert.Equal([SoaAt(60)], first.Authority);
        }
        server.Time.Advance(TimeSpan.FromSeconds(45));
        foreach (var (name, status) in negatives)
        {
            var cached = await server.AskAsync("kdig", name, "A");
            Assert.Equal(status, cached.Status);
            Assert.Equal([SoaAt(15)], cached.Authority);
        }
        Assert.Equal(2, server.Upstream.Queries.Count);

        // 61 s: gone from the cache (it used to stay the SOA's 300 s), asked again.
        server.Time.Advance(TimeSpan.FromSeconds(16));
        foreach (var (name, _) in negatives)
        {
            Assert.Equal([SoaAt(60)], (await server.AskAsync("dig", name, "A")).Authority);
        }
        Assert.Equal(4, server.Upstream.Queries.Count);
    }

    /// <summary>
    /// RFC 2181 §8: a TTL with its top bit set counts as 0 (relayed as 0, not cached). And no TTL
    /// relayed exceeds the cache's bound (Dns:MaxCacheTtl, 5 min here): 2^31-1 goes out as 300,
    /// counting down, since this server itself keeps the answer no longer.
    /// </summary>
    [Fact]
    public async Task Ttls_WithTheTopBitSetAreZero_AndNoneExceedsTheCacheBound()
    {
        await using var server = Start();

        Assert.Equal(["forever.example.test. 300 IN A 198.51.100.1"], (await server.AskAsync("dig", "forever.example.test", "A")).Answer);
        server.Time.Advance(TimeSpan.FromSeconds(100));
        Assert.Equal(["forever.example.test. 200 IN A 198.51.100.1"], (await server.AskAsync("kdig", "forever.example.test", "A")).Answer);
        Assert.Single(server.Upstream.Queries, q => q.Name == "forever.example.test");
        server.Time.Advance(TimeSpan.FromSeconds(200));
        Assert.Equal(["forever.example.test. 300 IN A 198.51.100.1"], (await server.AskAsync("dig", "forever.example.test", "A")).Answer);
        Assert.Equal(2, server.Upstream.Queries.Count(q => q.Name == "forever.example.test"));

        Assert.Equal(["msb.example.test. 0 IN A 198.51.100.2"], (await server.AskAsync("dig", "msb.example.test", "A")).Answer);
        Assert.Equal(["msb.example.test. 0 IN A 198.51.100.2"], (await server.AskAsync("dig", "msb.example.test", "A")).Answer);
        Assert.Equal(2, server.Upstream.Queries.Count(q => q.Name == "msb.example.test"));
    }

    /// <summary>
    /// An alias of ours chased outside our zones answers with AA, so only the upstream's records
    /// of the chain may follow it (RFC 1034 §4.3.2, RFC 2181 §5.4.1): owned by the target asked,
    /// then by each CNAME's target (letter case aside), wherever they stand in the section. A
    /// record for another name the upstream added is left out, relayed or from the cache; a plain
    /// forwarded answer (AA clear) is passed on whole.
    /// </summary>
    [Fact]
    public async Task ChasedAlias_CopiesOnlyTheUpstreamsRecordsOfTheChain()
    {
        await using var server = Start();

        foreach (var tool in new[] { "dig", "kdig" }) // asked upstream, then from the cache
        {
            var direct = await server.AskAsync(tool, "ext.shop.svc.cluster.local", "A");
            Assert.Equal("NOERROR", direct.Status);
            Assert.True(direct.Authoritative);
            Assert.Equal(["ext.shop.svc.cluster.local. 30 IN CNAME other.example.test.", "other.example.test. 300 IN A 198.51.100.9"], direct.Answer);

            var chain = await server.AskAsync(tool, "ext-chain.shop.svc.cluster.local", "A");
            Assert.Equal([
                "ext-chain.shop.svc.cluster.local. 30 IN CNAME alias.example.test.",
                "alias.example.test. 300 IN CNAME host2.example.test.",
                "host2.example.test. 300 IN A 198.51.100.10"], chain.Answer.Select(r => r.Replace("HOST2.EXAMPLE.TEST.", "host2.example.test.", StringComparison.Ordinal)));
        }
        Assert.Equal(2, server.Upstream.Queries.Count);

        var relayed = await server.AskAsync("dig", "other.example.test", "A");
        Assert.False(relayed.Authoritative);
        Assert.Equal(["other.example.test. 300 IN A 198.51.100.9", "evil.example.test. 300 IN A 6.6.6.6"], relayed.Answer);
    }
}
