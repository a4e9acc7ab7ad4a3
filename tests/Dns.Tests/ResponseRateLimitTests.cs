using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Dns.Tests;

/// <summary>Response rate limiting: the limiter against a fake clock, then a real server process asked by dig and kdig.</summary>
public sealed partial class ResponseRateLimitTests : IDisposable
{
    private const string Zone = """
        $ORIGIN cluster.local.
        @ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        web.shop.svc 30 IN A 10.96.0.20
        db.shop.svc 30 IN A 10.96.0.21
        """;

    private readonly string _zoneFile = Path.Combine(Path.GetTempPath(), $"cp-rrl-{Guid.NewGuid():N}.zone");

    private static readonly ClientAddress Client = ClientAddress.From(IPAddress.Parse("10.1.2.3"));
    private static readonly ClientAddress Neighbour = ClientAddress.From(IPAddress.Parse("10.1.2.200"));
    private static readonly ClientAddress Elsewhere = ClientAddress.From(IPAddress.Parse("10.1.3.3"));

    [Fact]
    public void Limiter_OverTheRate_DropsAndSlipsAlternately_ThenForgivesWithinTheWindow()
    {
        var time = new FakeTimeProvider();
        var limiter = new ResponseRateLimiter(new ResponseRateLimitOptions { ResponsesPerSecond = 4, Window = TimeSpan.FromSeconds(3), Slip = 2 }, time);
        var web = ResponseRateLimiter.Identity("web.shop.svc.cluster.local", 1, 0);
        for (var i = 0; i < 4; i++) Assert.Equal(RateLimitDecision.Send, limiter.Check(Client, web));
        var limited = Enumerable.Range(0, 6).Select(_ => limiter.Check(Client, web)).ToList();
        Assert.Equal([RateLimitDecision.Drop, RateLimitDecision.Slip, RateLimitDecision.Drop, RateLimitDecision.Slip, RateLimitDecision.Drop, RateLimitDecision.Slip], limited);

        // Same /24, same response: limited together. Another response or another /24: not.
        Assert.NotEqual(RateLimitDecision.Send, limiter.Check(Neighbour, web));
        Assert.Equal(RateLimitDecision.Send, limiter.Check(Elsewhere, web));
        Assert.Equal(RateLimitDecision.Send, limiter.Check(Client, ResponseRateLimiter.Identity("db.shop.svc.cluster.local", 1, 0)));
        Assert.Equal(RateLimitDecision.Send, limiter.Check(Client, ResponseRateLimiter.Identity("web.shop.svc.cluster.local", 28, 0)));
        // Letter case does not make a new response; every NXDOMAIN is one.
        Assert.Equal(web, ResponseRateLimiter.Identity("WEB.shop.svc.cluster.local", 1, 0));
        Assert.Equal(ResponseRateLimiter.Identity("a.cluster.local", 1, 3), ResponseRateLimiter.Identity("b.cluster.local", 28, 3));

        // The flood goes on: the debt stops at a window's worth (12), so it is repaid within the window.
        for (var i = 0; i < 1000; i++) limiter.Check(Client, web);
        time.Advance(TimeSpan.FromSeconds(3));
        Assert.NotEqual(RateLimitDecision.Send, limiter.Check(Client, web));
        time.Advance(TimeSpan.FromSeconds(0.5));
        Assert.Equal(RateLimitDecision.Send, limiter.Check(Client, web));
    }

    [Fact]
    public void Limiter_SlipZero_DropsAll_SlipOne_TruncatesAll()
    {
        var time = new FakeTimeProvider();
        var identity = ResponseRateLimiter.Identity("x", 1, 0);
        var drop = new ResponseRateLimiter(new ResponseRateLimitOptions { ResponsesPerSecond = 1, Slip = 0 }, time);
        var slip = new ResponseRateLimiter(new ResponseRateLimitOptions { ResponsesPerSecond = 1, Slip = 1 }, time);
        drop.Check(Client, identity);
        slip.Check(Client, identity);
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Equal(RateLimitDecision.Drop, drop.Check(Client, identity)));
        Assert.All(Enumerable.Range(0, 5), _ => Assert.Equal(RateLimitDecision.Slip, slip.Check(Client, identity)));
    }

    [Fact]
    public void Handler_LimitedUdpResponses_AreDroppedOrTruncated_TcpNever_AndAllocateNothing()
    {
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Zone)))
        {
            RateLimiter = new ResponseRateLimiter(new ResponseRateLimitOptions { ResponsesPerSecond = 2, Slip = 2 }, new FakeTimeProvider()),
        };
        var client = new IPEndPoint(IPAddress.Parse("10.1.2.3"), 5353).Serialize();
        var query = Queries.Build("web.shop.svc.cluster.local", DnsType.A);
        var response = new byte[512];
        var lengths = Enumerable.Range(0, 6).Select(_ => handler.Handle(query, response, tcp: false, client.Buffer.Span[..client.Size])).ToList();
        Assert.True(lengths[0] > query.Length && lengths[1] > query.Length);
        Assert.Equal([0, query.Length, 0, query.Length], lengths[2..]);
        Assert.True((response[2] & 0x02) != 0, "a slipped response (the last one) has TC set");
        Assert.Equal(0, BinaryPrimitives.ReadUInt16BigEndian(response.AsSpan(6)));
        Assert.True(handler.Handle(query, new byte[65535], tcp: true, client.Buffer.Span[..client.Size]) > query.Length);
        Assert.True(handler.Metrics.RateLimitedCount >= 2);
        Assert.True(handler.Metrics.SlippedCount >= 2);
        // Queries count responses sent: the dropped ones are only in the rate-limited count.
        Assert.Equal(7 - handler.Metrics.RateLimitedCount, handler.Metrics.Queries(DnsType.A));

        for (var i = 0; i < 1000; i++) handler.Handle(query, response, tcp: false, client.Buffer.Span[..client.Size]);
        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 10_000; i++) handler.Handle(query, response, tcp: false, client.Buffer.Span[..client.Size]);
        Assert.Equal(0, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    /// <summary>
    /// "[::]:port" serves IPv4 clients too (as IPv4-mapped addresses), and the rate limiter still
    /// groups them by their IPv4 /24: 127.0.1.1 shares a /56 with 127.0.0.1 as a mapped IPv6
    /// address, but not a /24.
    /// </summary>
    [Fact]
    public async Task DualStackListener_AnswersBothFamilies_AndLimitsIPv4ClientsByTheirSlash24()
    {
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Zone)))
        {
            // A clock that does not move: one response per second means exactly one here.
            RateLimiter = new ResponseRateLimiter(new ResponseRateLimitOptions { ResponsesPerSecond = 1, Slip = 0 }, new FakeTimeProvider()),
        };
        await using var listener = new ControlPlane.Dns.Transport.DnsListener(handler,
            new ControlPlane.Dns.Transport.DnsTransportOptions { Listen = $"[::]:{TestPorts.Next()}", Threads = 1 }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        listener.Start();
        var v4 = new IPEndPoint(IPAddress.Loopback, listener.LocalEndPoint.Port);
        var v6 = new IPEndPoint(IPAddress.IPv6Loopback, listener.LocalEndPoint.Port);
        const string name = "web.shop.svc.cluster.local";

        Assert.Equal("10.96.0.20", (await Dig.RunAsync(v4, "dig", "+short", name, "A")).Trim());
        Assert.Equal("(no status)", Dig.Parse(await Dig.RunAsync(v4, "dig", "-b", "127.0.0.2", name, "A")).Status);
        Assert.Equal("10.96.0.20", (await Dig.RunAsync(v4, "dig", "+short", "-b", "127.0.1.1", name, "A")).Trim());
        Assert.Equal("10.96.0.20", (await Dig.RunAsync(v6, "dig", "+short", name, "A")).Trim());
        Assert.Equal("NOERROR", Dig.Parse(await Dig.RunAsync(v4, "kdig", "+tcp", name, "A")).Status);
        Assert.Equal(1, handler.Metrics.RateLimitedCount);
    }

    [Fact]
    public async Task ServerProcess_UdpBurstIsLimited_TcpIsNot_ThenRecovers()
    {
        File.WriteAllText(_zoneFile, Zone);
        await using var server = DnsServerProcess.Start(null, $"--Dns:Listen={TestPorts.Loopback()}", "--Dns:ControlPlane=", $"--Dns:ZoneFiles:0={_zoneFile}",
            "--Dns:RateLimit:ResponsesPerSecond=5", "--Dns:RateLimit:Window=00:00:02", "--Dns:RateLimit:Slip=2");
        var line = await server.WaitForLineAsync("DNS listening on", TimeSpan.FromSeconds(30));
        var endpoint = IPEndPoint.Parse(ListeningOn().Match(line).Groups[1].Value);

        // A burst of 100 identical queries from one socket.
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        udp.Connect(endpoint);
        for (var id = 0; id < 100; id++) await udp.SendAsync(Queries.Build("web.shop.svc.cluster.local", DnsType.A, id: (ushort)id));
        var (full, truncated) = (0, 0);
        var buffer = new byte[1500];
        // Until the answers stop (half a second without one): the flood's debt must still be
        // owed when the clients below ask, well inside the 2 s window.
        try
        {
            while (true)
            {
                // The first answer may wait for the server's first queries to be compiled.
                using var quiet = new CancellationTokenSource(full + truncated == 0 ? TimeSpan.FromSeconds(5) : TimeSpan.FromMilliseconds(500));
                var n = await udp.ReceiveAsync(buffer, quiet.Token);
                if ((buffer[2] & 0x02) != 0) truncated++;
                else if (n > 0) full++;
            }
        }
        catch (OperationCanceledException)
        {
            // No more answers are coming.
        }
        Assert.InRange(full, 5, 15);
        Assert.InRange(truncated, 30, 60);
        Assert.True(full + truncated < 100, "some responses were dropped");

        // A real client meanwhile: over TCP it is never limited; over UDP it is dropped or told to use TCP.
        var tcp = Dig.Parse(await Dig.RunAsync(endpoint, "kdig", "+tcp", "web.shop.svc.cluster.local", "A"));
        Assert.Equal(("NOERROR", 1), (tcp.Status, tcp.Answer.Count));
        var duringFlood = await Dig.RunAsync(endpoint, "dig", "+ignore", "web.shop.svc.cluster.local", "A");
        Assert.DoesNotContain("10.96.0.20", duringFlood);

        // Once the window has passed (2 s of debt at most, plus one response's credit), UDP answers again in full.
        await Task.Delay(TimeSpan.FromSeconds(2.5));
        var after = Dig.Parse(await Dig.RunAsync(endpoint, "dig", "+ignore", "web.shop.svc.cluster.local", "A"));
        Assert.Equal(("NOERROR", 1), (after.Status, after.Answer.Count));
        Assert.DoesNotContain("tc", after.Flags);
    }

    [GeneratedRegex(@"DNS listening on (\S+)")]
    private static partial Regex ListeningOn();

    public void Dispose() => File.Delete(_zoneFile);
}
