using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Feed;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Transport;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// Reverse zones: only the service ranges and the networks' CIDRs are ours (authoritative answers);
/// other reverse names go to the forwarders, or are REFUSED without them.
/// </summary>
public sealed class ReverseZoneTests
{
    [Fact]
    public async Task ReverseNames_InTheServiceRangesAndNetworks_AreAuthoritative_OthersRefused()
    {
        await using var dns = await ClusterDns.StartAsync();
        var web = await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec { Network = "blue", IpFamilyPolicy = "RequireDualStack" },
        });
        // A network whose prefix ends inside an octet: 10.250.16.0/20 is 16.250.10 … 31.250.10.in-addr.arpa.
        await dns.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "green" }, Spec = new NetworkSpec { Vni = 11, Ipv4Cidr = "10.250.16.0/20" } });
        await dns.AwaitAnswerAsync("1.31.250.10.in-addr.arpa", DnsType.PTR, r => r.Rcode == (int)Rcode.NXDomain);
        await dns.AwaitAnswerAsync(ReverseZones.Name(System.Net.IPAddress.Parse(web.Status.ClusterIps[0])), DnsType.PTR, r => r.Answer.Count == 1);

        // Nobody's address: not ours, and no forwarder is configured.
        var outside = await dns.AskAsync("dig", "-x", "8.8.8.8");
        Assert.Equal("REFUSED", outside.Status);
        Assert.False(outside.Authoritative);
        Assert.Equal("REFUSED", (await dns.AskAsync("kdig", "-x", "2001:db8::1")).Status);
        Assert.Equal("REFUSED", (await dns.AskAsync("dig", "-x", "10.250.32.1")).Status);
        Assert.Equal("REFUSED", (await dns.AskAsync("dig", "-x", "10.250.15.255")).Status);
        Assert.Equal("REFUSED", (await dns.AskAsync("dig", "250.10.in-addr.arpa", "SOA")).Status);

        // The service ranges: PTR for the virtual IPs of both families, NXDOMAIN with the range's SOA otherwise.
        foreach (var ip in web.Status.ClusterIps)
        {
            Assert.Equal(["web.shop.svc.cluster.local."], (await dns.AskAsync("dig", "+short", "-x", ip)).Text.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        }
        await AssertAuthoritativeNxDomain(dns, "10.96.250.250", "96.10.in-addr.arpa.");
        await AssertAuthoritativeNxDomain(dns, "fd00:96::ffff", "0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.6.9.0.0.0.0.d.f.ip6.arpa.");
        // The networks' CIDRs, of both families.
        await AssertAuthoritativeNxDomain(dns, "10.244.77.77", "244.10.in-addr.arpa.");
        await AssertAuthoritativeNxDomain(dns, "fd00:244::77", "0.0.0.0.0.0.0.0.4.4.2.0.0.0.d.f.ip6.arpa.");
        await AssertAuthoritativeNxDomain(dns, "10.250.16.1", "16.250.10.in-addr.arpa.");
        await AssertAuthoritativeNxDomain(dns, "10.250.31.254", "31.250.10.in-addr.arpa.");
        var soa = await dns.AskAsync("kdig", "96.10.in-addr.arpa", "SOA");
        Assert.StartsWith("96.10.in-addr.arpa. 30 IN SOA ns.dns.cluster.local.", Assert.Single(soa.Answer));

        // A network deleted takes its reverse zones along.
        await dns.Client.Networks.DeleteAsync("", "green");
        await dns.AwaitAnswerAsync("1.31.250.10.in-addr.arpa", DnsType.PTR, r => r.Rcode == (int)Rcode.Refused);
    }

    [Fact]
    public async Task ReverseNames_OutsideOurZones_GoToTheForwarders()
    {
        var upstreamHandler = new QueryHandler(ZoneSnapshot.Build(ZoneFile.Parse("""
            $ORIGIN 8.8.8.in-addr.arpa.
            @ 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60
            8 300 IN PTR dns.example.test.
            """)));
        await using var upstream = new DnsListener(upstreamHandler, new DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, NullLogger.Instance);
        upstream.Start();
        await using var dns = await ClusterDns.StartAsync($"--Dns:Forwarders:0={upstream.LocalEndPoint}");

        var forwarded = await dns.AskAsync("dig", "-x", "8.8.8.8");
        Assert.Equal("NOERROR", forwarded.Status);
        Assert.Equal(["8.8.8.8.in-addr.arpa. 300 IN PTR dns.example.test."], forwarded.Answer);
        var asked = upstreamHandler.Metrics.Total;

        // Our own ranges are never forwarded.
        await AssertAuthoritativeNxDomain(dns, "10.96.250.250", "96.10.in-addr.arpa.");
        Assert.Equal(asked, upstreamHandler.Metrics.Total);
    }

    [Fact]
    public async Task ServiceRanges_AreTheSilosWhenEmbedded_AndASettingWhenStandalone()
    {
        await using var silo = await SocketSilo.StartAsync("--Dns:Enabled=true", $"--Dns:Listen={TestPorts.Loopback()}", "--ControlPlane:ServiceIpv4Cidr=10.100.0.0/16");
        await silo.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
        var embedded = silo.Services.GetRequiredService<DnsListenerService>().LocalEndPoint!;
        Assert.Equal("NXDOMAIN", (await Ask(embedded, "10.100.0.77")).Status);
        Assert.Equal("REFUSED", (await Ask(embedded, "10.96.0.77")).Status);

        // A standalone server following the same silo knows only its setting (default 10.96.0.0/16).
        foreach (var (settings, claimed, refused) in new[] { ((string[])[], "10.96.0.77", "10.100.0.77"), (["--Dns:ServiceRanges:0=10.100.0.0/16"], "10.100.0.77", "10.96.0.77") })
        {
            var builder = Host.CreateApplicationBuilder(["--Logging:LogLevel:Default=Warning", $"--Dns:Listen={TestPorts.Loopback()}", $"--Dns:ControlPlane=unix:{silo.Socket}", .. settings]);
            builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
            using var standalone = builder.Build();
            await standalone.StartAsync();
            try
            {
                await standalone.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
                var endpoint = standalone.Services.GetRequiredService<DnsListenerService>().LocalEndPoint!;
                var answer = await Ask(endpoint, claimed);
                Assert.Equal("NXDOMAIN", answer.Status);
                Assert.True(answer.Authoritative);
                Assert.Equal("REFUSED", (await Ask(endpoint, refused)).Status);
            }
            finally
            {
                await standalone.StopAsync();
            }
        }
    }

    private static async Task<DigOutput> Ask(System.Net.IPEndPoint server, string address) => Dig.Parse(await Dig.RunAsync(server, "dig", "-x", address));

    private static async Task AssertAuthoritativeNxDomain(ClusterDns dns, string address, string apex)
    {
        var answer = await dns.AskAsync("dig", "-x", address);
        Assert.Equal("NXDOMAIN", answer.Status);
        Assert.True(answer.Authoritative, answer.Text);
        Assert.StartsWith($"{apex} 5 IN SOA ns.dns.cluster.local.", Assert.Single(answer.Authority));
    }
}
