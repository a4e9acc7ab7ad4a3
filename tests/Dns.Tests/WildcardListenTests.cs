using System.Net;
using ControlPlane.Dns.Forwarding;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// A server on a wildcard address answers from the address each query was sent to (RFC 2181
/// §4.1): dig and kdig drop an answer from any other address. 127.0.0.5 is one of loopback's
/// addresses, but not the one the kernel would pick as a source (127.0.0.1).
/// </summary>
public sealed class WildcardListenTests
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

    [Theory]
    [InlineData("0.0.0.0:0")]
    [InlineData("[::]:0")]
    public async Task AnswersLeaveFromTheAddressTheQueryWasSentTo_ForwardedOnesToo(string listen)
    {
        await using var upstream = new DnsListener(new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Upstream))),
            new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        var forwarder = new Forwarder(new ForwarderOptions { Forwarders = [upstream.LocalEndPoint.ToString()], ForwardTimeout = TimeSpan.FromSeconds(3) }, TimeProvider.System);
        var handler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse(Cluster))) { Forwarder = forwarder };
        await using var server = new DnsListener(handler, new DnsTransportOptions { Listen = listen, Threads = 1 }, NullLogger.Instance);
        server.Start();
        var port = server.LocalEndPoint.Port;

        IPAddress[] targets = listen.StartsWith('[') ? [IPAddress.Parse("127.0.0.5"), IPAddress.Loopback, IPAddress.IPv6Loopback] : [IPAddress.Parse("127.0.0.5"), IPAddress.Loopback];
        foreach (var target in targets)
        {
            var at = new IPEndPoint(target, port);
            Assert.Equal("10.96.0.20", (await Dig.RunAsync(at, "dig", "+short", "web.shop.svc.cluster.local", "A")).Trim());
            Assert.Equal("NOERROR", Dig.Parse(await Dig.RunAsync(at, "kdig", "web.shop.svc.cluster.local", "A")).Status);
            Assert.Equal("192.168.77.7", (await Dig.RunAsync(at, "dig", "+short", "www.example.test", "A")).Trim());
        }
    }
}
