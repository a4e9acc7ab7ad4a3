using System.Diagnostics;
using System.Net;
using ControlPlane.Dns.Forwarding;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Dns.Tests;

/// <summary>Forwarding names outside our zones to an upstream the test starts on loopback.</summary>
public sealed class ForwardingTests
{
    private const string Cluster = """
        $ORIGIN cluster.local.
        @ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        web.shop.svc 30 IN A 10.96.0.20
        """;

    private const string Upstream = """
        $ORIGIN example.test.
        @ 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60
        www 300 IN A 192.168.77.7
        a 300 IN A 192.168.77.1
        b 300 IN A 192.168.77.2
        c 300 IN A 192.168.77.3
        """;

    [Fact]
    public async Task OutsideNames_AreForwardedAndCached_WithinTheCacheBound()
    {
        var upstreamHandler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Upstream)));
        var upstream = new DnsListener(upstreamHandler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        var forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.LocalEndPoint.ToString()], CacheSize = 2, ForwardTimeout = TimeSpan.FromSeconds(3) }, TimeProvider.System);
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster))) { Forwarder = forwarder };
        await using var server = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        server.Start();

        Assert.Equal("192.168.77.7", (await Dig(server.LocalEndPoint, "dig", "+short", "www.example.test", "A")).Trim());
        Assert.Contains("status: NXDOMAIN", await Dig(server.LocalEndPoint, "dig", "nope.example.test", "A"));
        Assert.Equal("192.168.77.7", (await Dig(server.LocalEndPoint, "kdig", "+tcp", "+short", "www.example.test", "A")).Trim());
        // Our own zone is still answered authoritatively, never forwarded.
        Assert.Equal("10.96.0.20", (await Dig(server.LocalEndPoint, "dig", "+short", "web.shop.svc.cluster.local", "A")).Trim());
        var forwardedSoFar = upstreamHandler.Metrics.Total;

        // With the upstream gone, cached answers still come back; uncached names fail with SERVFAIL.
        await upstream.DisposeAsync();
        Assert.Equal("192.168.77.7", (await Dig(server.LocalEndPoint, "dig", "+short", "www.example.test", "A")).Trim());
        Assert.Contains("status: SERVFAIL", await Dig(server.LocalEndPoint, "dig", "a.example.test", "A"));
        Assert.Equal(forwardedSoFar, upstreamHandler.Metrics.Total);
        Assert.True(forwarder.CachedEntries <= 2);
    }

    /// <summary>
    /// A forwarded answer goes out on the listening socket: a server that has forwarded stays
    /// idle when nothing arrives (its receive loop must not spin on a socket made non-blocking).
    /// The loop thread's CPU time over 2 idle seconds, read from /proc, stays far below the 2 s
    /// a spinning loop takes.
    /// </summary>
    [Fact]
    public async Task AServerThatForwarded_IsIdleWhenNothingArrives()
    {
        var upstreamHandler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Upstream)));
        await using var upstream = new DnsListener(upstreamHandler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        var forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.LocalEndPoint.ToString()] }, TimeProvider.System);
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster))) { Forwarder = forwarder };
        await using var server = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        server.Start();
        Assert.Equal("192.168.77.7", (await Dig(server.LocalEndPoint, "dig", "+short", "www.example.test", "A")).Trim());

        // Other threads come and go meanwhile: one gone between the listing and the read is skipped.
        static string? Comm(string task) { try { return File.ReadAllText(Path.Combine(task, "comm")).Trim(); } catch (IOException) { return null; } }
        var thread = Directory.GetDirectories("/proc/self/task").Single(t => Comm(t) == $"dns-udp-{server.LocalEndPoint.Port}-0");
        long Ticks()
        {
            var stat = File.ReadAllText(Path.Combine(thread, "stat"));
            var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
            return long.Parse(fields[11]) + long.Parse(fields[12]); // utime, stime (fields 14 and 15)
        }
        var before = Ticks();
        await Task.Delay(TimeSpan.FromSeconds(2));
        var used = Ticks() - before;
        Assert.True(used < 50, $"the receive loop used {used} clock ticks (1/100 s) in 2 idle seconds");
        // And it still answers.
        Assert.Equal("10.96.0.20", (await Dig(server.LocalEndPoint, "dig", "+short", "web.shop.svc.cluster.local", "A")).Trim());
    }

    [Fact]
    public async Task Cache_KeepsAtMostItsBound()
    {
        var upstreamHandler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Upstream)));
        await using var upstream = new DnsListener(upstreamHandler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        var forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.LocalEndPoint.ToString()], CacheSize = 2 }, TimeProvider.System);
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster))) { Forwarder = forwarder };
        await using var server = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        server.Start();

        foreach (var name in new[] { "a", "b", "c", "www" })
        {
            Assert.StartsWith("192.168.77.", (await Dig(server.LocalEndPoint, "dig", "+short", $"{name}.example.test", "A")).Trim());
        }
        Assert.Equal(2, forwarder.CachedEntries);
    }

    /// <summary>
    /// A server on a wildcard address answers from the address each query was sent to (RFC 2181
    /// §4.1), forwarded answers too: dig and kdig drop an answer from any other address.
    /// 127.0.0.5 is one of loopback's addresses, but not the one the kernel would pick as a
    /// source (127.0.0.1).
    /// </summary>
    [Theory]
    [InlineData("0.0.0.0")]
    [InlineData("[::]")]
    public async Task OnAWildcardAddress_AnswersLeaveFromTheAddressTheQueryWasSentTo(string listen)
    {
        await using var upstream = new DnsListener(new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Upstream))),
            new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        var forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.LocalEndPoint.ToString()], ForwardTimeout = TimeSpan.FromSeconds(3) }, TimeProvider.System);
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster))) { Forwarder = forwarder };
        await using var server = new DnsListener(handler, new DnsTransportOptions { Listen = $"{listen}:{TestPorts.Next()}", Threads = 1 }, NullLogger.Instance);
        server.Start();

        IPAddress[] targets = listen.StartsWith('[') ? [IPAddress.Parse("127.0.0.5"), IPAddress.Loopback, IPAddress.IPv6Loopback] : [IPAddress.Parse("127.0.0.5"), IPAddress.Loopback];
        foreach (var target in targets)
        {
            var at = new IPEndPoint(target, server.LocalEndPoint.Port);
            Assert.Equal("10.96.0.20", (await Dig(at, "dig", "+short", "web.shop.svc.cluster.local", "A")).Trim());
            Assert.Contains("status: NOERROR", await Dig(at, "kdig", "web.shop.svc.cluster.local", "A"));
            Assert.Equal("192.168.77.7", (await Dig(at, "dig", "+short", "www.example.test", "A")).Trim());
        }
    }

    private static async Task<string> Dig(IPEndPoint server, string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[$"@{server.Address}", "-p", server.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "+time=3", tool == "kdig" ? "+retry=0" : "+tries=1", .. args]) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output;
    }
}
