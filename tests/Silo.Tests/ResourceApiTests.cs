using Grpc.Core;
using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

public sealed class ResourceApiTests
{
    private static async Task<RpcException> Fails(StatusCode code, Func<Task> call, string? fragment = null)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, error.StatusCode);
        if (fragment is not null) Assert.Contains(fragment, error.Status.Detail);
        return error;
    }

    [Fact]
    public async Task Namespace_CreateGetUpdateDelete_WithEtags()
    {
        await using var silo = await SiloInstance.StartAsync();
        var api = silo.Client.Namespaces;

        var created = await api.CreateAsync(Namespace("team-a"));
        Assert.NotEmpty(created.Metadata.Uid);
        Assert.NotEmpty(created.Metadata.Etag);
        await Fails(StatusCode.AlreadyExists, () => api.CreateAsync(Namespace("team-a")));

        created.Metadata.Labels["tier"] = "gold";
        var updated = await api.UpdateAsync(created);
        Assert.NotEqual(created.Metadata.Etag, updated.Metadata.Etag);
        Assert.Equal("gold", (await api.GetAsync("", "team-a")).Metadata.Labels["tier"]);

        // The old etag is stale now: both a conditional update and delete are refused.
        await Fails(StatusCode.Aborted, () => api.UpdateAsync(created), "metadata.etag");
        await Fails(StatusCode.Aborted, () => api.DeleteAsync("", "team-a", created.Metadata.Etag), "etag");

        await api.DeleteAsync("", "team-a", updated.Metadata.Etag);
        await Fails(StatusCode.NotFound, () => api.GetAsync("", "team-a"));
        await Fails(StatusCode.NotFound, () => api.DeleteAsync("", "team-a"));
        // A name no object can have is a mistake in the request, said as one (List and Watch say so of a namespace).
        await Fails(StatusCode.InvalidArgument, () => api.GetAsync("", "BAD_"), "name: 'BAD_' must be dot-separated DNS labels");
        await Fails(StatusCode.InvalidArgument, () => api.GetAsync("", new string('a', 64)), "labels of at most 63 characters: one is 64");
        await Fails(StatusCode.InvalidArgument, () => api.GetAsync("", new string('a', 254)), "name: must be at most 253 characters (is 254)");
        await Fails(StatusCode.InvalidArgument, () => api.DeleteAsync("", "Team-A"), "name:");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.DeleteAsync("Shop", "web"), "namespace: 'Shop' must consist of lower-case letters");

        // A uid in an update is a precondition, as in Kubernetes: an update written for the object
        // of that uid does not land on another object created since under the same name.
        var again = await api.CreateAsync(Namespace("team-a"));
        var stale = updated.Clone();
        stale.Metadata.Etag = "";
        stale.Metadata.Labels["tier"] = "silver";
        await Fails(StatusCode.Aborted, () => api.UpdateAsync(stale), $"metadata.uid: '{updated.Metadata.Uid}' is not the uid of Namespace 'team-a' ('{again.Metadata.Uid}')");
        Assert.False((await api.GetAsync("", "team-a")).Metadata.Labels.ContainsKey("tier"));
        stale.Metadata.Uid = again.Metadata.Uid;
        Assert.Equal("silver", (await api.UpdateAsync(stale)).Metadata.Labels["tier"]);
    }

    [Fact]
    public async Task Network_OverlappingCidrOrDuplicateVni_IsRefusedNamingTheConflict()
    {
        await using var silo = await SiloInstance.StartAsync();
        var api = silo.Client.Networks;
        var blue = await api.CreateAsync(Network("blue", 100, "10.10.0.0/16", "fd00:10::/64"));
        Assert.Equal("10.10.0.1", blue.Status.Ipv4Gateway);
        Assert.Equal("fd00:10::1", blue.Status.Ipv6Gateway);
        Assert.Equal(1450u, blue.Status.Mtu);
        var before = await PositionAsync(silo.Client);

        await Fails(StatusCode.FailedPrecondition, () => api.CreateAsync(Network("green", 200, "10.10.128.0/17")), "spec.ipv4_cidr");
        await Fails(StatusCode.FailedPrecondition, () => api.CreateAsync(Network("green", 200, "10.8.0.0/13")), "'blue'");
        await Fails(StatusCode.FailedPrecondition, () => api.CreateAsync(Network("green", 200, "10.96.128.0/17")), "service range");
        await Fails(StatusCode.FailedPrecondition, () => api.CreateAsync(Network("green", 100, "10.11.0.0/16")), "spec.vni");
        await Fails(StatusCode.FailedPrecondition, () => api.CreateAsync(Network("green", 200, "10.11.0.0/16", "fd00:10:0:0:8000::/65")), "spec.ipv6_cidr");
        Assert.Equal(before, await PositionAsync(silo.Client));

        // The failed claims were released: a disjoint network now succeeds.
        await api.CreateAsync(Network("green", 200, "10.11.0.0/16"));
    }

    [Fact]
    public async Task Network_DeleteWhileEndpointsHoldAddresses_IsRefused()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "pod-1", "net", "node-a"));

        await Fails(StatusCode.FailedPrecondition, () => silo.Client.Networks.DeleteAsync("", "net"), "still has 1 endpoint holding addresses (first 'ns/pod-1')");
        await Fails(StatusCode.FailedPrecondition, () => silo.Client.Namespaces.DeleteAsync("", "ns"), "pod-1");

        await silo.Client.Endpoints.DeleteAsync("ns", "pod-1");
        await silo.Client.Networks.DeleteAsync("", "net");
        await silo.Client.Namespaces.DeleteAsync("", "ns");
        // Its VNI and range are free again.
        await silo.Client.Networks.CreateAsync(Network("net2", 100, "10.20.0.0/16"));
    }

    public static TheoryData<string, Func<Contracts.Client.ControlPlaneClient, Task>, string> InvalidRequests => new()
    {
        { "bad namespace name", c => c.Namespaces.CreateAsync(Namespace("Bad_Name")), "metadata.name" },
        { "missing name", c => c.Namespaces.CreateAsync(new Namespace()), "metadata.name" },
        { "bad label", c => c.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "x", Labels = { ["bad key!"] = "v" } } }), "metadata.labels" },
        { "etag on create", c => c.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "x", Etag = "7" } }), "metadata.etag" },
        { "host bits", c => c.Networks.CreateAsync(Network("n1", 7, "10.30.0.1/16")), "spec.ipv4_cidr" },
        { "not a cidr", c => c.Networks.CreateAsync(Network("n1", 7, "ten/8")), "spec.ipv4_cidr" },
        { "v6 in v4 field", c => c.Networks.CreateAsync(Network("n1", 7, "fd00::/64")), "spec.ipv4_cidr" },
        { "vni zero", c => c.Networks.CreateAsync(Network("n1", 0, "10.30.0.0/16")), "spec.vni" },
        { "vni too large", c => c.Networks.CreateAsync(Network("n1", 1 << 24, "10.30.0.0/16")), "spec.vni" },
        { "block larger than network", c => c.Networks.CreateAsync(Network("n1", 7, "10.30.0.0/24", block: 16)), "spec.ipv4_block_prefix_length" },
        { "bad underlay", c => c.Nodes.CreateAsync(Node("n1", "999.1.1.1")), "spec.underlay_ip" },
        { "endpoint without network", c => c.Endpoints.CreateAsync(Endpoint("ns", "e", "", "node-a")), "spec.network" },
        { "duplicate port name", c => c.Endpoints.CreateAsync(new Endpoint { Metadata = new ObjectMeta { Name = "e", Namespace = "ns" }, Spec = new EndpointSpec { Network = "net", Node = "node-a", Ports = { new NamedPort { Name = "http", Port = 80 }, new NamedPort { Name = "http", Port = 81 } } } }), "spec.ports[1].name" },
        { "port zero", c => c.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "s", Namespace = "ns" }, Spec = new ServiceSpec { Network = "net", Ports = { new ServicePort { Port = 0 } } } }), "spec.ports[0].port" },
        { "service name starts with digit", c => c.Services.CreateAsync(Service("ns", "1svc", "net")), "metadata.name" },
        { "bad selector operator", c => c.NetworkPolicies.CreateAsync(new NetworkPolicy { Metadata = new ObjectMeta { Name = "p", Namespace = "ns" }, Spec = new NetworkPolicySpec { PodSelector = new LabelSelector { MatchExpressions = { new LabelSelectorRequirement { Key = "app", Operator = "Near" } } } } }), "spec.pod_selector.match_expressions[0].operator" },
        { "ipBlock with selector", c => c.NetworkPolicies.CreateAsync(new NetworkPolicy { Metadata = new ObjectMeta { Name = "p", Namespace = "ns" }, Spec = new NetworkPolicySpec { Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = "10.0.0.0/8" }, PodSelector = new LabelSelector() } } } } } }), "spec.ingress[0].peers[0].ip_block" },
        { "except outside cidr", c => c.NetworkPolicies.CreateAsync(new NetworkPolicy { Metadata = new ObjectMeta { Name = "p", Namespace = "ns" }, Spec = new NetworkPolicySpec { Egress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = "10.0.0.0/16", Except = { "10.1.0.0/24" } } } } } } } }), "except[0]" },
        { "endPort below port", c => c.NetworkPolicies.CreateAsync(new NetworkPolicy { Metadata = new ObjectMeta { Name = "p", Namespace = "ns" }, Spec = new NetworkPolicySpec { Ingress = { new NetworkPolicyRule { Ports = { new NetworkPolicyPort { Number = 80, EndPort = 79 } } } } } }), "end_port" },
        { "bad policy type", c => c.NetworkPolicies.CreateAsync(new NetworkPolicy { Metadata = new ObjectMeta { Name = "p", Namespace = "ns" }, Spec = new NetworkPolicySpec { PolicyTypes = { "Sideways" } } }), "spec.policy_types[0]" },
        { "upper-case external name", c => c.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "ext", Namespace = "ns" }, Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "Example.COM." } }), "spec.external_name" },
        { "external name with two trailing dots", c => c.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "ext", Namespace = "ns" }, Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "example.com.." } }), "spec.external_name" },
        { "page size", c => c.Namespaces.ListAsync(new ListRequest { PageSize = 5000 }), "page_size" },
        { "page token", c => c.Namespaces.ListAsync(new ListRequest { PageToken = "!!" }), "page_token" },
        { "list namespace no namespace can have", c => c.Endpoints.ListAsync(new ListRequest { Namespace = "NOT VALID" }), "namespace" },
        { "resume token", async c => { await foreach (var _ in c.WatchAsync(new WatchRequest { ResumeToken = "garbage" })) { } }, "resume_token" },
        { "bookmark interval", async c => { await foreach (var _ in c.WatchAsync(new WatchRequest { Kinds = { Kind.Namespace }, BookmarkIntervalSeconds = uint.MaxValue })) { } }, "bookmark_interval_seconds" },
    };

    [Theory]
    [MemberData(nameof(InvalidRequests))]
    public async Task InvalidInput_IsInvalidArgumentNamingTheField_AndChangesNothing(string _, Func<Contracts.Client.ControlPlaneClient, Task> call, string field)
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var before = await PositionAsync(silo.Client);

        await Fails(StatusCode.InvalidArgument, () => call(silo.Client), field);

        Assert.Equal(before, await PositionAsync(silo.Client));
        Assert.Equal("ns", (await silo.Client.Namespaces.GetAsync("", "ns")).Metadata.Name);
    }

    [Fact]
    public async Task References_ToMissingObjects_AreRefusedPrecisely()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);

        await Fails(StatusCode.NotFound, () => silo.Client.Endpoints.CreateAsync(Endpoint("nowhere", "e", "net", "node-a")), "metadata.namespace");
        await Fails(StatusCode.FailedPrecondition, () => silo.Client.Endpoints.CreateAsync(Endpoint("ns", "e", "net", "node-z")), "spec.node");
        await Fails(StatusCode.FailedPrecondition, () => silo.Client.Endpoints.CreateAsync(Endpoint("ns", "e", "other", "node-a")), "spec.network");
        await Fails(StatusCode.FailedPrecondition, () => silo.Client.Services.CreateAsync(Service("ns", "svc", "other")), "spec.network");
    }

    [Fact]
    public async Task Update_ImmutableField_IsRefused()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var endpoint = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "e", "net", "node-a"));

        endpoint.Spec.Node = "node-b";
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.UpdateAsync(endpoint), "spec.node");
        var network = await silo.Client.Networks.GetAsync("", "net");
        network.Spec.Ipv4Cidr = "10.21.0.0/16";
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Networks.UpdateAsync(network), "spec.ipv4_cidr");
    }

    [Fact]
    public async Task List_PagesThroughEveryObjectOnce()
    {
        await using var silo = await SiloInstance.StartAsync();
        await Task.WhenAll(Enumerable.Range(0, 25).Select(i => silo.Client.Namespaces.CreateAsync(Namespace($"ns-{i:00}"))));

        var names = new List<string>();
        var request = new ListRequest { PageSize = 10 };
        var pages = 0;
        do
        {
            var page = await silo.Client.Namespaces.ListAsync(request);
            names.AddRange(page.Namespaces.Select(n => n.Metadata.Name));
            Assert.All(page.Namespaces, n => Assert.NotEmpty(n.Metadata.Etag));
            request.PageToken = page.NextPageToken;
            pages++;
        } while (request.PageToken.Length > 0);

        Assert.Equal(3, pages);
        Assert.Equal(Enumerable.Range(0, 25).Select(i => $"ns-{i:00}"), names);
    }

    /// <summary>
    /// A page ends before its objects outgrow 2 MiB, whatever page_size says: stock clients refuse
    /// messages over 4 MiB, and 100 namespaces with many labels exceed it. Paging still returns
    /// every object once.
    /// </summary>
    [Fact]
    public async Task A_page_of_large_objects_stays_below_what_clients_accept()
    {
        await using var silo = await SiloInstance.StartAsync();
        var value = new string('v', 63);
        for (var n = 0; n < 20; n++)
        {
            var big = Namespace($"big-{n:D2}");
            for (var l = 0; l < 2000; l++) big.Metadata.Labels[$"label-{l}"] = value;
            await silo.Client.Namespaces.CreateAsync(big);
        }

        var names = new List<string>();
        var request = new ListRequest();
        var pages = 0;
        do
        {
            var page = await silo.Client.Namespaces.ListAsync(request);
            Assert.True(page.CalculateSize() < 4 * 1024 * 1024, $"a page of {page.CalculateSize()} bytes");
            names.AddRange(page.Namespaces.Select(n => n.Metadata.Name));
            request.PageToken = page.NextPageToken;
            pages++;
        }
        while (request.PageToken.Length > 0);
        Assert.True(pages > 1, "20 namespaces of about 140 KB came in one page");
        Assert.Equal(Enumerable.Range(0, 20).Select(n => $"big-{n:D2}"), names);
    }

    /// <summary>
    /// A page token continues the listing that issued it (API Improvement Proposal 158): with
    /// another namespace or kind it is INVALID_ARGUMENT naming page_token; page_size may change.
    /// </summary>
    [Fact]
    public async Task A_page_token_continues_only_its_own_listing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await silo.Client.Namespaces.CreateAsync(Namespace("other"));
        for (var i = 0; i < 3; i++)
        {
            await silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"e{i}", "net", "node-a"));
            await silo.Client.Endpoints.CreateAsync(Endpoint("other", $"e{i}", "net", "node-a"));
        }
        var first = await silo.Client.Endpoints.ListAsync(new ListRequest { Namespace = "ns", PageSize = 1 });
        Assert.NotEmpty(first.NextPageToken);

        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.ListAsync(new ListRequest { Namespace = "other", PageToken = first.NextPageToken }), "page_token");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.ListAsync(new ListRequest { PageToken = first.NextPageToken }), "page_token");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.ListAsync(new ListRequest { Namespace = "ns", PageToken = first.NextPageToken }), "page_token");
        // The token's text as issued, not with white space the decoder would skip.
        foreach (var padded in new[] { " " + first.NextPageToken, first.NextPageToken + "\n", first.NextPageToken.Insert(4, " ") })
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.ListAsync(new ListRequest { Namespace = "ns", PageToken = padded }), "page_token");
        var rest = await silo.Client.Endpoints.ListAsync(new ListRequest { Namespace = "ns", PageSize = 10, PageToken = first.NextPageToken });
        Assert.Equal(["e1", "e2"], rest.Endpoints.Select(e => e.Metadata.Name));
        Assert.Empty(rest.NextPageToken);

        // A resume position edited past what the store holds is refused, as a Watch refuses it.
        var (afterKey, resume) = Api.PageToken.Decode(first.NextPageToken, Grains.Resources.Kinds.Endpoint, "ns");
        var position = Api.ResumeToken.Decode(resume!, silo.Store.Partitions.StoreId, silo.Store.Partitions.Count);
        var heads = silo.Store.Store.List([Grains.Resources.Kinds.Endpoint], null, null, 1).Heads;
        position[0] = heads[0] + 1;
        var ahead = Api.PageToken.Encode(Grains.Resources.Kinds.Endpoint, "ns", afterKey!, Api.ResumeToken.Encode(silo.Store.Partitions.StoreId, position));
        await Fails(StatusCode.OutOfRange, () => silo.Client.Endpoints.ListAsync(new ListRequest { Namespace = "ns", PageToken = ahead }), "page_token");
    }

    [Fact]
    public async Task Service_ClusterIp_GetsADistinctVirtualIp_ReleasedOnDelete()
    {
        await using var silo = await SiloInstance.StartAsync("--ControlPlane:ServiceIpv4Cidr=10.96.0.0/29");
        await SeedAsync(silo.Client);
        var ips = new HashSet<string>();
        // A /29 holds 8 addresses, less network, first host and broadcast: 5.
        for (var i = 0; i < 5; i++)
        {
            var service = await silo.Client.Services.CreateAsync(Service("ns", $"svc-{i}", "net"));
            Assert.True(ips.Add(Assert.Single(service.Status.ClusterIps)));
        }
        var headless = Service("ns", "headless", "net");
        headless.Spec.Type = ServiceType.Headless;
        Assert.Empty((await silo.Client.Services.CreateAsync(headless)).Status.ClusterIps);
        await Fails(StatusCode.ResourceExhausted, () => silo.Client.Services.CreateAsync(Service("ns", "svc-x", "net")));

        await silo.Client.Services.DeleteAsync("ns", "svc-0");
        var again = await silo.Client.Services.CreateAsync(Service("ns", "svc-x", "net"));
        Assert.Contains(Assert.Single(again.Status.ClusterIps), ips);
    }
}
