using System.Buffers.Binary;
using System.Diagnostics;
using System.Net.Sockets;
using ControlPlane.Dns.Forwarding;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// Queries pipelined on one TCP connection (RFC 7766 §6.2.1.1, §7) are answered as each answer is
/// ready: a forwarded query whose upstream is slow holds up none of the authoritative answers
/// behind it. The client is raw: all queries in one write, responses matched by id.
/// </summary>
public sealed class TcpPipeliningTests
{
    private const string Cluster = """
        $ORIGIN cluster.local.
        @ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        web.shop.svc 30 IN A 10.96.0.20
        """;

    /// <summary>slow-N.example.test: A 198.51.100.N, after the upstream's delay.</summary>
    private static byte[]? Slow(FakeQuery query) =>
        query.Reply(0x8180).Answer(ReplyBuilder.QuestionName, DnsType.A, 300, [198, 51, 100, byte.Parse(query.Name.Split('.')[0]["slow-".Length..])]).Build();

    private static async Task<(DnsListener Server, FakeUpstream Upstream)> StartAsync(TimeSpan delay, int maxInFlight)
    {
        var upstream = new FakeUpstream(Slow, delay);
        var forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.EndPoint.ToString()], ForwardTimeout = TimeSpan.FromSeconds(10) }, TimeProvider.System);
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster))) { Forwarder = forwarder };
        var server = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1, MaxTcpQueriesInFlight = maxInFlight }, NullLogger.Instance);
        server.Start();
        await Task.Yield();
        return (server, upstream);
    }

    /// <summary>Sends every query in one write, then reads as many responses: each decoded, with when it came.</summary>
    private static Task<List<(DecodedResponse Response, TimeSpan At)>> PipelineAsync(DnsListener server, params byte[][] queries) =>
        PipelineAsync(server, queries.Length, queries);

    /// <summary>Sends every message in one write, then reads <paramref name="answers"/> responses.</summary>
    private static async Task<List<(DecodedResponse Response, TimeSpan At)>> PipelineAsync(DnsListener server, int answers, params byte[][] queries)
    {
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await tcp.ConnectAsync(server.LocalEndPoint);
        var framed = new List<byte>();
        foreach (var query in queries)
        {
            framed.AddRange([(byte)(query.Length >> 8), (byte)query.Length]);
            framed.AddRange(query);
        }
        var clock = Stopwatch.StartNew();
        await tcp.SendAsync(framed.ToArray(), SocketFlags.None);
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        var responses = new List<(DecodedResponse, TimeSpan)>();
        var length = new byte[2];
        while (responses.Count < answers)
        {
            await ReadExactlyAsync(tcp, length, timeout.Token);
            var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
            await ReadExactlyAsync(tcp, message, timeout.Token);
            // Each frame must be one whole response: bytes of two interleaved would not decode.
            responses.Add((DecodedResponse.Decode(message), clock.Elapsed));
        }
        return responses;
    }

    private static async Task ReadExactlyAsync(Socket socket, Memory<byte> destination, CancellationToken cancellationToken)
    {
        for (var read = 0; read < destination.Length;)
        {
            var n = await socket.ReceiveAsync(destination[read..], SocketFlags.None, cancellationToken);
            if (n == 0) throw new EndOfStreamException("the server closed the connection");
            read += n;
        }
    }

    [Fact]
    public async Task AuthoritativeAnswers_AreNotHeldUpByASlowForwardedQueryBeforeThem()
    {
        var delay = TimeSpan.FromSeconds(3);
        var (server, upstream) = await StartAsync(delay, maxInFlight: 16);
        await using (upstream)
        await using (server)
        {
            var responses = await PipelineAsync(server,
                Queries.Build("slow-1.example.test", DnsType.A, id: 1),
                Queries.Build("web.shop.svc.cluster.local", DnsType.A, id: 2),
                Queries.Build("slow-2.example.test", DnsType.A, id: 3),
                Queries.Build("nope.shop.svc.cluster.local", DnsType.A, id: 4));

            // Our own answers first, in the order asked, long before the upstream replies.
            Assert.Equal([2, 4], responses.Take(2).Select(r => (int)r.Response.Id));
            Assert.All(responses.Take(2), r => Assert.True(r.At < delay, $"an authoritative answer came after {r.At}"));
            Assert.Equal(["web.shop.svc.cluster.local. 30 IN A 10.96.0.20"], responses[0].Response.Answer);
            Assert.Equal(3, responses[1].Response.Rcode);
            Assert.True(responses[1].Response.Authoritative);

            // Then both forwarded ones, whole, asked upstream side by side (not one after the other).
            var slow = responses.Skip(2).OrderBy(r => r.Response.Id).ToList();
            Assert.Equal([1, 3], slow.Select(r => (int)r.Response.Id));
            Assert.Equal(["slow-1.example.test. 300 IN A 198.51.100.1"], slow[0].Response.Answer);
            Assert.Equal(["slow-2.example.test. 300 IN A 198.51.100.2"], slow[1].Response.Answer);
            Assert.All(slow, r => Assert.False(r.Response.Authoritative));
            Assert.All(slow, r => Assert.True(r.At >= delay - Slack, $"a forwarded answer came after {r.At}"));
            Assert.Equal(2, upstream.Queries.Count);
        }
    }

    /// <summary>
    /// A response sent to the server (QR set) gets no reply, over TCP as over UDP (RFC 1035 §7.3),
    /// and the queries after it on the connection are answered.
    /// </summary>
    [Fact]
    public async Task AResponseAmongTheQueries_IsIgnored_AndTheQueriesAfterItAreAnswered()
    {
        var (server, upstream) = await StartAsync(TimeSpan.Zero, maxInFlight: 16);
        await using (upstream)
        await using (server)
        {
            var stray = Queries.Build("web.shop.svc.cluster.local", DnsType.A, id: 1);
            stray[2] |= 0x80;

            var responses = await PipelineAsync(server, 2, stray, Queries.Build("web.shop.svc.cluster.local", DnsType.A, id: 2), Queries.Build("nope.shop.svc.cluster.local", DnsType.A, id: 3));

            Assert.Equal([2, 3], responses.Select(r => (int)r.Response.Id));
            Assert.Equal(["web.shop.svc.cluster.local. 30 IN A 10.96.0.20"], responses[0].Response.Answer);
        }
    }

    /// <summary>How much earlier than the upstream's delay a timer may fire, as the client's stopwatch measures it.</summary>
    private static readonly TimeSpan Slack = TimeSpan.FromMilliseconds(50);

    /// <summary>
    /// With one forwarded query allowed in flight, the second waits unread until the first is
    /// answered; the authoritative one behind it is then answered at once, before the second.
    /// </summary>
    [Fact]
    public async Task ForwardedQueriesInFlight_AreBoundedPerConnection()
    {
        var delay = TimeSpan.FromSeconds(1.5);
        var (server, upstream) = await StartAsync(delay, maxInFlight: 1);
        await using (upstream)
        await using (server)
        {
            var responses = await PipelineAsync(server,
                Queries.Build("slow-1.example.test", DnsType.A, id: 1),
                Queries.Build("slow-2.example.test", DnsType.A, id: 2),
                Queries.Build("web.shop.svc.cluster.local", DnsType.A, id: 3));

            Assert.Equal([1, 3, 2], responses.Select(r => (int)r.Response.Id));
            // Not asked upstream until the first was answered: about two delays, not one. (Timers may
            // fire a fraction of a millisecond before the stopwatch says, so not to the tick.)
            Assert.True(responses[2].At >= 2 * delay - Slack, $"the second forwarded query was answered after {responses[2].At}");
        }
    }
}
