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
    public async Task EndpointSet_HoldsOnlyTargetedPorts_AndStaysWithinTheObjectBound_ReadyEndpointsFirst()
    {
        const int ports = 250, notReady = 40, ready = 450;
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.ServiceEndpoints } });
        // Each endpoint names 250 ports the service targets and one it does not; 450 ready ones
        // alone make a set of about 1.4 MB, over the 1 MiB bound of an object.
        Endpoint Member(string name, bool isReady)
        {
            var endpoint = Endpoint("ns", name, "net", "node-a", isReady, ("app", "big"));
            for (var i = 0; i < ports; i++) endpoint.Spec.Ports.Add(new NamedPort { Name = $"t-{i:000}", Port = (uint)(2000 + i) });
            endpoint.Spec.Ports.Add(new NamedPort { Name = "unused", Port = 9999 });
            return endpoint;
        }
        var names = Enumerable.Range(0, notReady).Select(i => ($"a-{i:000}", false))
            .Concat(Enumerable.Range(0, ready).Select(i => ($"b-{i:000}", true))).ToList();
        foreach (var chunk in names.Chunk(32))
        {
            await Task.WhenAll(chunk.Select(n => silo.Client.Endpoints.CreateAsync(Member(n.Item1, n.Item2))));
        }
        var service = Service("ns", "big", "net", ("app", "big"));
        service.Spec.Ports.Clear();
        for (var i = 0; i < ports; i++) service.Spec.Ports.Add(new ServicePort { Name = $"p-{i:000}", Port = (uint)(1000 + i), TargetPortName = $"t-{i:000}" });
        await silo.Client.Services.CreateAsync(service);

        var set = (await watch.WaitForAsync(e => e.ServiceEndpoints?.Metadata.Name == "big", "the set of the big service", 30_000)).ServiceEndpoints;
        Assert.True(set.CalculateSize() <= Grains.Validation.ObjectSize.MaxObjectBytes, $"the set is {set.CalculateSize()} bytes");
        Assert.True(set.Omitted > notReady, $"omitted {set.Omitted}");
        Assert.Equal(notReady + ready, set.Endpoints.Count + (int)set.Omitted);
        // Ready endpoints first, by name: every not-ready one is left out, then the last ready ones.
        var kept = set.Endpoints.Select(e => e.Name).ToList();
        Assert.Equal(names.Where(n => n.Item2).Select(n => n.Item1).Take(kept.Count), kept);
        Assert.All(set.Endpoints, e => Assert.Equal(Enumerable.Range(0, ports).Select(i => $"t-{i:000}"), e.Ports.Select(p => p.Name)));
        var got = await silo.Client.GetServiceEndpointsAsync("ns", "big");
        Assert.Equal(set.Endpoints, got.Endpoints);
        Assert.Equal(set.Omitted, got.Omitted);

        // With 150 ready endpoints gone every selected endpoint fits again, not-ready ones too.
        foreach (var chunk in names.Where(n => n.Item2).Take(150).Chunk(32))
        {
            await Task.WhenAll(chunk.Select(n => silo.Client.Endpoints.DeleteAsync("ns", n.Item1)));
        }
        set = (await watch.WaitForAsync(e => e.ServiceEndpoints?.Metadata.Name == "big" && e.ServiceEndpoints.Endpoints.Count == notReady + ready - 150,
            "the whole set once it fits", 30_000)).ServiceEndpoints;
        Assert.Equal(0u, set.Omitted);
        Assert.Equal(names.Take(notReady).Concat(names.Skip(notReady + 150)).Select(n => n.Item1), set.Endpoints.Select(e => e.Name));
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
