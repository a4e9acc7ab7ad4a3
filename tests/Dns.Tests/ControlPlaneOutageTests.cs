using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Feed;
using ControlPlane.Dns.Wire;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.Dns.Tests;

/// <summary>The control plane goes away and comes back: DNS keeps answering, then resumes its watch.</summary>
public sealed class ControlPlaneOutageTests
{
    [Fact]
    public async Task SiloDown_DnsAnswersFromItsLastSnapshot_AndFollowsChangesOnceItIsBack()
    {
        await using var silo = await SocketSilo.StartAsync();
        var builder = Host.CreateApplicationBuilder(["--Logging:LogLevel:Default=Warning", $"--Dns:Listen={TestPorts.Loopback()}", $"--Dns:ControlPlane=unix:{silo.Socket}"]);
        builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
        using var dns = builder.Build();
        await dns.StartAsync();
        var handler = dns.Services.GetRequiredService<DnsListenerService>().Handler;
        try
        {
            await dns.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
            using (var client = silo.Connect())
            {
                await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
                await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16" } });
                await client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "before", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
            }
            await Answered(handler, "before.shop.svc.cluster.local");

            await silo.StopAsync();
            // The control plane is gone: answers keep coming from the last snapshot.
            Assert.Equal(0, Queries.Ask(handler, "before.shop.svc.cluster.local").Rcode);
            Assert.Single(Queries.Ask(handler, "before.shop.svc.cluster.local").Answer);

            await silo.StartAgainAsync();
            using (var client = silo.Connect())
            {
                await client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "after", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
            }
            await Answered(handler, "after.shop.svc.cluster.local");
            Assert.Single(Queries.Ask(handler, "before.shop.svc.cluster.local").Answer);
        }
        finally
        {
            await dns.StopAsync();
        }
    }


    private static async Task Answered(Handling.QueryHandler handler, string name)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(Zones.ZoneSnapshot _) { if (Queries.Ask(handler, name).Answer.Count == 1) done.TrySetResult(); }
        handler.Swapped += Check;
        try
        {
            Check(handler.Snapshot);
            await done.Task.WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            handler.Swapped -= Check;
        }
    }
}
