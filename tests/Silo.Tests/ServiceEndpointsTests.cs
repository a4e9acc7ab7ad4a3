using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

public sealed class ServiceEndpointsTests
{
    private static bool SetIs(WatchEvent e, string service, params (string Name, bool Ready)[] expected) =>
        e.Type != EventType.Bookmark && e.ServiceEndpoints?.Metadata.Name == service &&
        e.ServiceEndpoints.Endpoints.Select(a => (a.Name, a.Ready)).SequenceEqual(expected);

    [Fact]
    public async Task EndpointSet_FollowsLabelsAndReadiness()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.ServiceEndpoints } });
        await silo.Client.Services.CreateAsync(Service("ns", "web", "net", ("app", "web")));
        await watch.WaitForAsync(e => SetIs(e, "web"), "an empty set for the new service");

        var web1 = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "web-1", "net", "node-a", ready: true, ("app", "web")));
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "db-1", "net", "node-a", ready: true, ("app", "db")));
        var set = await watch.WaitForAsync(e => SetIs(e, "web", ("web-1", true)), "web-1 joins");
        Assert.Equal(web1.Status.Ips, set.ServiceEndpoints.Endpoints[0].Ips);

        // Readiness: web-2 joins not ready, then becomes ready.
        var web2 = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "web-2", "net", "node-a", ready: false, ("app", "web")));
        await watch.WaitForAsync(e => SetIs(e, "web", ("web-1", true), ("web-2", false)), "web-2 joins not ready");
        web2.Spec.Ready = true;
        await silo.Client.Endpoints.UpdateAsync(web2);
        await watch.WaitForAsync(e => SetIs(e, "web", ("web-1", true), ("web-2", true)), "web-2 becomes ready");

        // Labels: web-1 is relabelled away, db-1 is relabelled in.
        web1 = await silo.Client.Endpoints.GetAsync("ns", "web-1");
        web1.Metadata.Labels["app"] = "other";
        await silo.Client.Endpoints.UpdateAsync(web1);
        await watch.WaitForAsync(e => SetIs(e, "web", ("web-2", true)), "web-1 leaves");
        var db1 = await silo.Client.Endpoints.GetAsync("ns", "db-1");
        db1.Metadata.Labels["app"] = "web";
        await silo.Client.Endpoints.UpdateAsync(db1);
        await watch.WaitForAsync(e => SetIs(e, "web", ("db-1", true), ("web-2", true)), "db-1 joins");

        // Deletion of an endpoint and of the service.
        await silo.Client.Endpoints.DeleteAsync("ns", "web-2");
        await watch.WaitForAsync(e => SetIs(e, "web", ("db-1", true)), "web-2 leaves on delete");
        await silo.Client.Services.DeleteAsync("ns", "web");
        await watch.WaitForAsync(e => e.Type == EventType.Deleted && e.ServiceEndpoints?.Metadata.Name == "web", "the set is deleted with its service");
    }

    [Fact]
    public async Task EndpointSet_OnlyIncludesEndpointsOfTheServiceNetwork()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await silo.Client.Networks.CreateAsync(Network("other", 101, "10.21.0.0/16"));
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.ServiceEndpoints } });
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "elsewhere", "other", "node-a", ready: true, ("app", "web")));
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "here", "net", "node-a", ready: true, ("app", "web")));

        await silo.Client.Services.CreateAsync(Service("ns", "web", "net", ("app", "web")));

        await watch.WaitForAsync(e => SetIs(e, "web", ("here", true)), "only the endpoint on the service's network");
    }
}
