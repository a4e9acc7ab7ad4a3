using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

public sealed class NodeLeaseTests
{
    [Fact]
    public async Task ExpiredLease_MakesTheNodesEndpointsNotReady_AndAHeartbeatRestoresThem()
    {
        await using var silo = await SiloInstance.StartAsync("--ControlPlane:NodeLeaseDuration=00:00:01");
        await SeedAsync(silo.Client);
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Endpoint, Kind.Node, Kind.ServiceEndpoints } });
        await watch.WaitForAsync(e => e.InitialEventsEnd, "synced");
        var node = await silo.Client.Nodes.GetAsync("", "node-a");
        Assert.True(node.Status.Ready);
        Assert.Equal(node.Status.VtepMac, (await silo.Client.Nodes.GetAsync("", "node-a")).Status.VtepMac);
        await silo.Client.Services.CreateAsync(Service("ns", "web", "net", ("app", "web")));
        var endpoint = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "pod", "net", "node-a", ready: true, ("app", "web")));
        Assert.True(endpoint.Status.EffectiveReady);

        // No heartbeat: within a lease and a check period the node and its endpoint turn not ready.
        await watch.WaitForAsync(e => e.Node is { Status.Ready: false }, "node-a marked not ready", 5000);
        await watch.WaitForAsync(e => e.Endpoint is { Status: { NodeReady: false, EffectiveReady: false } }, "its endpoint not ready", 5000);
        await watch.WaitForAsync(e => e.ServiceEndpoints is { Endpoints: [{ Ready: false }] }, "the service set shows it not ready", 5000);
        Assert.False((await silo.Client.Endpoints.GetAsync("ns", "pod")).Status.EffectiveReady);

        var heartbeat = await silo.Client.HeartbeatAsync("node-a");
        Assert.True(heartbeat.Ready);
        await watch.WaitForAsync(e => e.Endpoint is { Status.EffectiveReady: true }, "the endpoint ready again", 5000);
    }
}
