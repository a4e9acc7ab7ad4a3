using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Dns.Tests;

/// <summary>Random and mutated traffic: nothing escapes, memory stays bounded, answers stay right.</summary>
public sealed class RobustnessTests
{
    private static readonly ZoneSnapshot Zone = ZoneSnapshot.Build(ZoneFile.Parse("""
        $ORIGIN cluster.local.
        $TTL 30
        @ IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        @ IN NS ns.dns.cluster.local.
        web.shop.svc IN A 10.96.0.20
        _http._tcp.web.shop.svc IN SRV 0 100 80 web.shop.svc.cluster.local.
        """));

    /// <summary>Half random bytes, half valid queries with bytes flipped, cut or pointers planted.</summary>
    private static byte[] Packet(Random random, int i)
    {
        if (i % 2 == 0)
        {
            var bytes = new byte[random.Next(0, 600)];
            random.NextBytes(bytes);
            return bytes;
        }
        var query = Queries.Build(random.Next(3) == 0 ? "web.shop.svc.cluster.local" : "_http._tcp.web.shop.svc.cluster.local",
            (DnsType)random.Next(0, 40), (ushort)i, ednsSize: random.Next(2) == 0 ? null : (ushort)random.Next(0, 65536));
        for (var flips = random.Next(1, 5); flips > 0; flips--)
        {
            switch (random.Next(4))
            {
                case 0: query[random.Next(query.Length)] = (byte)random.Next(256); break;
                case 1: query = query[..random.Next(query.Length)]; if (query.Length == 0) return query; break;
                case 2: var at = random.Next(12, Math.Max(13, query.Length - 1)); if (at + 1 < query.Length) { query[at] = 0xC0; query[at + 1] = (byte)random.Next(256); } break;
                default: if (query.Length >= 6) BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(4), (ushort)random.Next(0, 3)); break;
            }
        }
        return query;
    }

    [Fact]
    public void Handler_HundredThousandRandomAndMutatedMessages_NeverThrows()
    {
        var handler = new QueryHandler(Zone);
        var random = new Random(20261122);
        var response = new byte[65535];
        for (var i = 0; i < 100_000; i++)
        {
            var packet = Packet(random, i);
            var length = handler.Handle(packet, response, tcp: i % 3 == 0);
            Assert.InRange(length, 0, response.Length);
            if (length > 0) Assert.Equal(0x80, response[2] & 0x80); // every reply is a response
        }
        Assert.Equal(0, CheckAnswer(handler));
    }

    [Fact]
    public async Task Listener_FloodOverUdpAndTcp_KeepsAnsweringWithBoundedMemory()
    {
        var handler = new QueryHandler(Zone);
        await using var listener = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 2, MaxTcpConnections = 16, TcpIdleTimeout = TimeSpan.FromSeconds(2) }, NullLogger.Instance);
        listener.Start();
        GC.Collect();
        var before = GC.GetTotalMemory(forceFullCollection: true);
        var random = new Random(7);

        using (var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp))
        {
            for (var i = 0; i < 80_000; i++)
            {
                udp.SendTo(Packet(random, i), listener.LocalEndPoint);
                if (i % 256 == 0) await Task.Yield();
            }
        }
        // 20,000 length-prefixed frames over 40 connections (more than the server accepts at once).
        var senders = Enumerable.Range(0, 40).Select(async c =>
        {
            var frames = Enumerable.Range(0, 500).Select(i => Packet(new Random(c * 1000 + i), i)).ToList();
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            try
            {
                await tcp.ConnectAsync(listener.LocalEndPoint);
                var drain = DrainAsync(tcp);
                foreach (var frame in frames)
                {
                    var prefixed = new byte[2 + frame.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(prefixed, (ushort)frame.Length);
                    frame.CopyTo(prefixed, 2);
                    await tcp.SendAsync(prefixed, SocketFlags.None);
                }
                tcp.Shutdown(SocketShutdown.Send);
                await drain;
            }
            catch (SocketException)
            {
                // Refused or reset by the connection limit: that is the server protecting itself.
            }
        });
        await Task.WhenAll(senders);

        Assert.Equal(0, CheckAnswer(handler));
        Assert.Equal("10.96.0.20", await AskOverUdp(listener.LocalEndPoint));
        Assert.Equal("10.96.0.20", await AskOverTcp(listener.LocalEndPoint));
        GC.Collect();
        var grown = GC.GetTotalMemory(forceFullCollection: true) - before;
        Assert.True(grown < 64 * 1024 * 1024, $"memory grew by {grown / 1024 / 1024} MiB");
        // A good part of the flood really was parsed (the kernel drops UDP the loops cannot take in
        // time, and a TCP connection ends at its first unanswerable frame).
        Assert.True(handler.Metrics.Total > 20_000, $"only {handler.Metrics.Total} messages handled");
        Assert.True(handler.Metrics.Responses(Rcode.FormErr) > 1000);
    }

    private static async Task DrainAsync(Socket socket)
    {
        var buffer = new byte[65536];
        try
        {
            while (await socket.ReceiveAsync(buffer, SocketFlags.None) > 0) { }
        }
        catch (SocketException)
        {
        }
    }

    private static int CheckAnswer(QueryHandler handler)
    {
        var response = new byte[512];
        var length = handler.Handle(Queries.Build("web.shop.svc.cluster.local", DnsType.A), response, tcp: false);
        var decoded = DecodedResponse.Decode(response.AsSpan(0, length));
        return decoded.Answer.SequenceEqual(["web.shop.svc.cluster.local. 30 IN A 10.96.0.20"]) ? decoded.Rcode : -1;
    }

    private static async Task<string> AskOverUdp(IPEndPoint server)
    {
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await udp.ConnectAsync(server);
        await udp.SendAsync(Queries.Build("web.shop.svc.cluster.local", DnsType.A, id: 4242), SocketFlags.None);
        var buffer = new byte[512];
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (true)
        {
            var n = await udp.ReceiveAsync(buffer, SocketFlags.None, timeout.Token);
            var response = DecodedResponse.Decode(buffer.AsSpan(0, n));
            if (response.Id == 4242) return response.Answer.Single().Split(' ')[^1];
        }
    }

    /// <summary>
    /// A UDP query larger than the server reads (EDNS padding past 4 KiB) gets FORMERR with its id
    /// (RFC 1035 §4.1.1), not silence that leaves the client to time out; smaller ones are answered.
    /// </summary>
    [Fact]
    public async Task Listener_AnswersAnOversizedUdpQuery_FormErr()
    {
        await using var listener = new DnsListener(new QueryHandler(Zone), new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        listener.Start();
        using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        await udp.ConnectAsync(listener.LocalEndPoint);
        var buffer = new byte[1232];
        foreach (var (padding, id, rcode) in new[] { (3000, 1, Rcode.NoError), (60000, 2, Rcode.FormErr), (5000, 3, Rcode.FormErr) })
        {
            await udp.SendAsync(Padded(Queries.Build("web.shop.svc.cluster.local", DnsType.A, id: (ushort)id, ednsSize: 1232), padding), SocketFlags.None);
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var response = DecodedResponse.Decode(buffer.AsSpan(0, await udp.ReceiveAsync(buffer, SocketFlags.None, timeout.Token)));
            Assert.Equal(id, response.Id);
            Assert.Equal((int)rcode, response.Rcode);
        }

        // The query with an OPT record as its last record, given an EDNS padding option (RFC 7830) of that many bytes.
        static byte[] Padded(byte[] query, int padding)
        {
            var padded = new byte[query.Length + 4 + padding];
            query.CopyTo(padded, 0);
            BinaryPrimitives.WriteUInt16BigEndian(padded.AsSpan(query.Length - 2), (ushort)(4 + padding));
            BinaryPrimitives.WriteUInt16BigEndian(padded.AsSpan(query.Length), 12);
            BinaryPrimitives.WriteUInt16BigEndian(padded.AsSpan(query.Length + 2), (ushort)padding);
            return padded;
        }
    }

    [Fact]
    public Task Listener_AtTheConnectionLimit_ClosesTheLongestIdleConnection_ForANewOne() => AtTheLimitAsync(async (listener, held) =>
    {
        // The second and third ask once, so the first has waited longest for a query.
        Assert.Equal("10.96.0.20", await AskOn(held[1]));
        Assert.Equal("10.96.0.20", await AskOn(held[2]));

        // A fourth client (a TCP retry after TC, say) is served: the first connection makes room.
        Assert.Equal("10.96.0.20", await AskOverTcp(listener.LocalEndPoint));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await held[0].ReceiveAsync(new byte[1], SocketFlags.None, timeout.Token));
        Assert.Equal("10.96.0.20", await AskOn(held[1]));
    });

    /// <summary>A listener limited to three TCP connections, with three connected and held by <paramref name="test"/>.</summary>
    private static async Task AtTheLimitAsync(Func<DnsListener, List<Socket>, Task> test)
    {
        var handler = new QueryHandler(Zone);
        await using var listener = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1, MaxTcpConnections = 3, TcpIdleTimeout = TimeSpan.FromSeconds(60) }, NullLogger.Instance);
        listener.Start();
        var held = new List<Socket>();
        try
        {
            for (var i = 0; i < 3; i++)
            {
                var connection = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
                held.Add(connection);
                await connection.ConnectAsync(listener.LocalEndPoint);
            }
            await test(listener, held);
        }
        finally
        {
            foreach (var connection in held) connection.Dispose();
        }
    }

    /// <summary>
    /// Connections that sent part of a query and stalled (a length prefix, a few bytes) are not
    /// answering anything: at the limit they are closed for a new client as idle ones are, so
    /// that stalled clients cannot keep every new one out.
    /// </summary>
    [Fact]
    public Task Listener_AtTheConnectionLimit_ConnectionsStalledMidQuery_AreClosedForNewOnes() => AtTheLimitAsync(async (listener, held) =>
    {
        foreach (var connection in held)
        {
            await connection.SendAsync(new byte[] { 0, 48, 0x12 }, SocketFlags.None); // 48 bytes announced, 1 sent
        }
        await UntilReadByServer(listener.LocalEndPoint.Port, connections: 3);

        Assert.Equal("10.96.0.20", await AskOverTcp(listener.LocalEndPoint));
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        Assert.Equal(0, await held[0].ReceiveAsync(new byte[1], SocketFlags.None, timeout.Token));
    });

    /// <summary>
    /// Waits until the server's end of <paramref name="connections"/> established connections to
    /// <paramref name="port"/> (loopback IPv4) has nothing left unread in its receive queue: the
    /// listener has read what the clients sent (/proc/net/tcp, the kernel's own view).
    /// </summary>
    private static async Task UntilReadByServer(int port, int connections)
    {
        var local = $"0100007F:{port:X4}";
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var server = File.ReadLines("/proc/net/tcp").Skip(1).Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                .Where(f => f[1] == local && f[3] == "01").ToList();
            if (server.Count == connections && server.All(f => f[4].EndsWith(":00000000", StringComparison.Ordinal))) return;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(10), $"the listener did not read its connections: {string.Join("; ", server.Select(f => f[4]))}");
            await Task.Delay(20);
        }
    }

    private static async Task<string> AskOverTcp(IPEndPoint server)
    {
        using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        await tcp.ConnectAsync(server);
        return await AskOn(tcp);
    }

    private static async Task<string> AskOn(Socket tcp)
    {
        var query = Queries.Build("web.shop.svc.cluster.local", DnsType.A);
        var framed = new byte[2 + query.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await tcp.SendAsync(framed, SocketFlags.None);
        var buffer = new byte[4096];
        var read = 0;
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
        while (read < 2 || read < 2 + BinaryPrimitives.ReadUInt16BigEndian(buffer))
        {
            read += await tcp.ReceiveAsync(buffer.AsMemory(read), SocketFlags.None, timeout.Token);
        }
        return DecodedResponse.Decode(buffer.AsSpan(2, read - 2)).Answer.Single().Split(' ')[^1];
    }
}
