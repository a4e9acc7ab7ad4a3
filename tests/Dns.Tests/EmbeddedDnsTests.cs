using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Feed;
using ControlPlane.Dns.Wire;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Dns.Tests;

/// <summary>The single-node default: DNS hosted inside the silo, following the silo's own Watch.</summary>
public sealed class EmbeddedDnsTests
{
    [Fact]
    public async Task SiloWithDnsEnabled_AnswersForItsOwnServices()
    {
        await using var silo = await SocketSilo.StartAsync("--Dns:Enabled=true", $"--Dns:Listen={TestPorts.Loopback()}");
        await silo.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
        var handler = silo.Services.GetRequiredService<DnsListenerService>().Handler;
        using var client = silo.Connect();
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16" } });
        var web = await client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });

        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var buffer = new byte[512];
        bool Check()
        {
            var length = handler.Handle(Queries.Build("web.shop.svc.cluster.local", DnsType.A), buffer, tcp: false);
            return DecodedResponse.Decode(buffer.AsSpan(0, length)).Answer.SequenceEqual([$"web.shop.svc.cluster.local. 30 IN A {web.Status.ClusterIps[0]}"]);
        }
        handler.Swapped += _ => { if (Check()) answered.TrySetResult(); };
        if (!Check()) await answered.Task.WaitAsync(TimeSpan.FromSeconds(10));
    }

    [Fact]
    public async Task SiloWithDnsEnabled_AnswersItsOwnExportsInTheClusterSetZone()
    {
        var listen = TestPorts.Loopback();
        await using var silo = await SocketSilo.StartAsync("--Dns:Enabled=true", $"--Dns:Listen={listen}", "--ClusterSet:ClusterId=east", "--ControlPlane:ServiceIpv6Cidr=fd00:96::/108");
        await silo.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
        var handler = silo.Services.GetRequiredService<DnsListenerService>().Handler;
        using var client = silo.Connect();
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16", Ipv6Cidr = "fd00:244::/64" } });
        await client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue", IpFamilyPolicy = "RequireDualStack" } });
        await client.ServiceExports.CreateAsync(new ServiceExport { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" } });

        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var buffer = new byte[512];
        bool Check()
        {
            var length = handler.Handle(Queries.Build("web.shop.svc.clusterset.local", DnsType.AAAA), buffer, tcp: false);
            return DecodedResponse.Decode(buffer.AsSpan(0, length)).Answer.Count == 1;
        }
        handler.Swapped += _ => { if (Check()) answered.TrySetResult(); };
        if (!Check()) await answered.Task.WaitAsync(TimeSpan.FromSeconds(20));

        // The ClusterSetIPs come from the silo's service ranges, whose reverse zones the embedded server holds.
        var import = await client.ServiceImports.GetAsync("shop", "web");
        var server = System.Net.IPEndPoint.Parse(listen);
        foreach (var (ip, type) in import.Spec.Ips.Select(ip => (ip, ip.Contains(':') ? "AAAA" : "A")))
        {
            var answer = Dig.Parse(await Dig.RunAsync(server, "dig", "web.shop.svc.clusterset.local", type));
            Assert.True(answer.Authoritative);
            Assert.Equal([$"web.shop.svc.clusterset.local. 30 IN {type} {ip}"], answer.Answer);
            Assert.Equal("web.shop.svc.clusterset.local.", (await Dig.RunAsync(server, "kdig", "+short", "-x", ip)).Trim());
        }
        Assert.Equal(2, import.Spec.Ips.Count);
    }
}
