using System.Net;
using System.Text.RegularExpressions;
using ControlPlane.Dns.Forwarding;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Dns.Tests;

/// <summary>Recursion only for the cluster's own clients: forwarded for allowed sources, REFUSED for others.</summary>
public sealed partial class ForwardingClientsTests
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
        """;

    [Fact]
    public void Parse_KeywordsAndCidrs_MatchTheirRanges()
    {
        var errors = new List<string>();
        var clients = ForwardingClients.Parse(["localhost", "10.0.0.0/8", "fd00::/64", "networks"], errors);
        Assert.Empty(errors);
        Assert.True(clients.Allows(ClientAddress.From(IPAddress.Parse("127.0.0.53"))));
        Assert.True(clients.Allows(ClientAddress.From(IPAddress.IPv6Loopback)));
        Assert.True(clients.Allows(ClientAddress.From(IPAddress.Parse("10.200.0.1"))));
        Assert.True(clients.Allows(ClientAddress.From(IPAddress.Parse("fd00::5"))));
        Assert.False(clients.Allows(ClientAddress.From(IPAddress.Parse("fd00:0:0:1::5"))));
        Assert.False(clients.Allows(ClientAddress.From(IPAddress.Parse("172.16.0.1"))));
        // The control plane's networks, as the feed learns them.
        clients.SetNetworks(["172.16.0.0/16", "fd10::/48"]);
        Assert.True(clients.Allows(ClientAddress.From(IPAddress.Parse("172.16.9.9"))));
        Assert.True(clients.Allows(ClientAddress.From(IPAddress.Parse("fd10::1"))));
        clients.SetNetworks([]);
        Assert.False(clients.Allows(ClientAddress.From(IPAddress.Parse("172.16.9.9"))));

        ForwardingClients.Parse(["everyone", "10.0.0.0/33"], errors);
        Assert.Equal(2, errors.Count);
        // Without "networks" learned ranges are ignored.
        var fixedOnly = ForwardingClients.Parse(["localhost"], errors);
        fixedOnly.SetNetworks(["172.16.0.0/16"]);
        Assert.False(fixedOnly.Allows(ClientAddress.From(IPAddress.Parse("172.16.9.9"))));
    }

    [Fact]
    public async Task AllowedClient_IsForwarded_OtherSourceIsRefused_OwnZoneAnsweredToBoth()
    {
        var upstreamHandler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Upstream)));
        await using var upstream = new DnsListener(upstreamHandler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        var errors = new List<string>();
        // Loopback over IPv6 is one of ours; 127.0.0.1 is not.
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster)))
        {
            Forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.LocalEndPoint.ToString()] }, TimeProvider.System),
            ForwardingClients = ForwardingClients.Parse(["::1/128"], errors),
        };
        Assert.Empty(errors);
        await using var v6 = new DnsListener(handler, new DnsTransportOptions { Listen = $"[::1]:{TestPorts.Next()}", Threads = 1 }, NullLogger.Instance);
        v6.Start();
        await using var v4 = new DnsListener(handler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        v4.Start();

        var allowed = Dig.Parse(await Dig.RunAsync(v6.LocalEndPoint, "dig", "www.example.test", "A"));
        Assert.Equal(("NOERROR", "www.example.test. 300 IN A 192.168.77.7"), (allowed.Status, allowed.Answer.Single()));
        var cachedOverTcp = Dig.Parse(await Dig.RunAsync(v6.LocalEndPoint, "kdig", "+tcp", "www.example.test", "A"));
        Assert.Equal("NOERROR", cachedOverTcp.Status);

        var refused = Dig.Parse(await Dig.RunAsync(v4.LocalEndPoint, "dig", "www.example.test", "A"));
        Assert.Equal("REFUSED", refused.Status);
        Assert.Empty(refused.Answer);
        // Refused even when the answer is in the cache, and over TCP too.
        Assert.Equal("REFUSED", Dig.Parse(await Dig.RunAsync(v4.LocalEndPoint, "kdig", "+tcp", "www.example.test", "A")).Status);
        Assert.Equal(2, handler.Metrics.ForwardingRefusedCount);
        // Our own zone is answered to everyone.
        Assert.Equal("10.96.0.20", (await Dig.RunAsync(v4.LocalEndPoint, "dig", "+short", "web.shop.svc.cluster.local", "A")).Trim());
    }

    [Fact]
    public async Task ServerProcess_AllowedClientsSetting_ReplacesTheDefault()
    {
        var upstreamHandler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Upstream)));
        await using var upstream = new DnsListener(upstreamHandler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        string[] common = [$"--Dns:Listen={TestPorts.Loopback()}", "--Dns:ControlPlane=", $"--Dns:Forwarders:0={upstream.LocalEndPoint}"];

        // The default (localhost, localnets, networks) lets loopback through.
        await using (var byDefault = DnsServerProcess.Start(null, common))
        {
            var endpoint = await ListeningAsync(byDefault);
            Assert.Equal("192.168.77.7", (await Dig.RunAsync(endpoint, "dig", "+short", "www.example.test", "A")).Trim());
        }
        // A configured list replaces it entirely (it is not added to the default).
        await using (var narrowed = DnsServerProcess.Start(null, [.. common, "--Dns:Forwarding:AllowedClients:0=10.0.0.0/8"]))
        {
            var endpoint = await ListeningAsync(narrowed);
            Assert.Equal("REFUSED", Dig.Parse(await Dig.RunAsync(endpoint, "dig", "www.example.test", "A")).Status);
        }
        await using var invalid = DnsServerProcess.Start(null, [.. common, "--Dns:Forwarding:AllowedClients:0=everyone", "--Dns:RateLimit:Slip=-1"]);
        await invalid.WaitForLineAsync("'everyone' is neither a CIDR nor localhost, localnets or networks", TimeSpan.FromSeconds(30));
        await invalid.WaitForLineAsync("Dns:RateLimit:Slip must not be negative", TimeSpan.FromSeconds(30));
    }

    private static async Task<IPEndPoint> ListeningAsync(DnsServerProcess server) =>
        IPEndPoint.Parse(ListeningOn().Match(await server.WaitForLineAsync("DNS listening on", TimeSpan.FromSeconds(30))).Groups[1].Value);

    [GeneratedRegex(@"DNS listening on (\S+)")]
    private static partial Regex ListeningOn();
}
