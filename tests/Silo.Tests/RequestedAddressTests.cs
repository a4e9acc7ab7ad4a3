using Microsoft.Extensions.DependencyInjection;
using ControlPlane.Grains.Resources;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>Services and endpoints that ask for their addresses, and services of every IP family policy.</summary>
public sealed class RequestedAddressTests : IDisposable
{
    // The data directory of the tests that restart their silo on it.
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-silo-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }

    private static async Task<RpcException> Fails(StatusCode code, Func<Task> call, string fragment)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, error.StatusCode);
        Assert.Contains(fragment, error.Status.Detail);
        return error;
    }

    private static Endpoint Asking(string name, string node, params string[] ips)
    {
        var endpoint = Endpoint("ns", name, "net", node);
        endpoint.Spec.Ips.Add(ips);
        return endpoint;
    }

    private static Service Family(string name, string policy, string[] families, params string[] clusterIps)
    {
        var service = Service("ns", name, "net");
        service.Spec.IpFamilyPolicy = policy;
        service.Spec.IpFamilies.Add(families);
        service.Spec.ClusterIps.Add(clusterIps);
        return service;
    }

    [Fact]
    public async Task AnEndpoint_GetsTheAddressItAsksFor_AndNoOneElseCan()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client, cidr: "10.70.0.0/16", block: 26);
        await silo.Client.Nodes.CreateAsync(Node("node-b", "10.255.0.2"));

        var first = await silo.Client.Endpoints.CreateAsync(Asking("first", "node-a", "10.70.0.20"));
        Assert.Equal("10.70.0.20", Assert.Single(first.Status.Ips));
        var before = await PositionAsync(silo.Client);

        await Fails(StatusCode.AlreadyExists, () => silo.Client.Endpoints.CreateAsync(Asking("second", "node-a", "10.70.0.20")), "ns/first");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.CreateAsync(Asking("second", "node-a", "10.71.0.5")), "spec.ips[0]");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.CreateAsync(Asking("second", "node-a", "10.70.0.1")), "reserved");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.CreateAsync(Asking("second", "node-a", "10.070.0.9")), "spec.ips[0]");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.CreateAsync(Asking("second", "node-a", "fd00::9")), "spec.ips[0]");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.CreateAsync(Asking("second", "node-a", "10.70.0.9", "10.70.0.10")), "spec.ips[1]");
        // Node a's block is 10.70.0.0/26; an address there cannot live on node b.
        await Fails(StatusCode.FailedPrecondition, () => silo.Client.Endpoints.CreateAsync(Asking("second", "node-b", "10.70.0.30")), "node 'node-a'");
        Assert.Equal(before, await PositionAsync(silo.Client));

        // An address in a block nobody holds takes that block for the node.
        var far = await silo.Client.Endpoints.CreateAsync(Asking("far", "node-b", "10.70.200.7"));
        Assert.Equal("10.70.200.7", far.Status.Ips[0]);
        Assert.Contains((await silo.Client.Networks.GetAsync("", "net")).Status.Blocks, b => b.Cidr == "10.70.200.0/26" && b.Node == "node-b");

        await silo.Client.Endpoints.DeleteAsync("ns", "first");
        Assert.Equal("10.70.0.20", (await silo.Client.Endpoints.CreateAsync(Asking("second", "node-a", "10.70.0.20"))).Status.Ips[0]);
    }

    /// <summary>
    /// An address a create took but never committed (its silo died in between; here the network
    /// grain is asked for it directly and nothing commits) goes to the next endpoint that asks
    /// for it: the store holds no claim for it. It was refused, naming an endpoint that did not
    /// exist, until the network grain was next rebuilt from the store (minutes on a busy network).
    /// Once committed, the address is refused again, naming its real holder.
    /// </summary>
    [Fact]
    public async Task AnAddressACreateTookButNeverCommitted_GoesToTheNextThatAsks()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client, cidr: "10.70.0.0/16", block: 26);
        var network = silo.Services.GetRequiredService<Orleans.IGrainFactory>().Get<ControlPlane.Grains.Resources.INetworkGrain>("net");
        Assert.Equal(["10.70.0.20"], (await network.AllocateAsync("node-a", "ns/ghost", ["10.70.0.20"])).Ips);

        var taken = await silo.Client.Endpoints.CreateAsync(Asking("real", "node-a", "10.70.0.20"));
        Assert.Equal("10.70.0.20", Assert.Single(taken.Status.Ips));
        await Fails(StatusCode.AlreadyExists, () => silo.Client.Endpoints.CreateAsync(Asking("other", "node-a", "10.70.0.20")), "ns/real");
        // The ghost's late release names it, not the address's holder: it frees nothing.
        await network.ReleaseAsync("ns/ghost", ["10.70.0.20"]);
        await Fails(StatusCode.AlreadyExists, () => silo.Client.Endpoints.CreateAsync(Asking("other", "node-a", "10.70.0.20")), "ns/real");
    }

    /// <summary>
    /// Creates that took an address and never committed do not use a network up: when no address
    /// is left in memory, the pools are rebuilt from the store, which has only committed ones.
    /// A /28 of one block has 13 addresses for endpoints (16 less the network, gateway and broadcast
    /// addresses); 40 such creates left it exhausted
    /// (RESOURCE_EXHAUSTED) for every endpoint after them.
    /// </summary>
    [Fact]
    public async Task CreatesThatNeverCommitted_DoNotExhaustANetwork()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client, cidr: "10.70.0.0/28", block: 28);
        var network = silo.Services.GetRequiredService<Orleans.IGrainFactory>().Get<ControlPlane.Grains.Resources.INetworkGrain>("net");
        for (var i = 0; i < 40; i++) await network.AllocateAsync("node-a", $"ns/ghost-{i}", []);

        var addresses = new List<string>();
        for (var i = 0; i < 13; i++) addresses.Add(Assert.Single((await silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"real-{i}", "net", "node-a"))).Status.Ips));
        Assert.Equal(13, addresses.Distinct().Count());
        await Fails(StatusCode.ResourceExhausted, () => silo.Client.Endpoints.CreateAsync(Endpoint("ns", "one-more", "net", "node-a")), "no free address");
    }

    /// <summary>
    /// An endpoint refused for one family's address takes no block for the other family's:
    /// neither the free block its own requested address opens nor the fresh block an address
    /// chosen for it would come from. Such refusals once gave every block of a small network to a
    /// node that held nothing, durably, until no other node could get an address.
    /// </summary>
    [Fact]
    public async Task AnEndpointRefusedForOneAddress_TakesNoBlockForTheOther_AcrossARestart()
    {
        AddressBlock[] blocks;
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false))
        {
            await silo.Client.Namespaces.CreateAsync(Namespace("ns"));
            var network = Network("net", 80, "10.80.0.0/24", "fd00:80::/120", block: 26);
            await silo.Client.Networks.CreateAsync(network);
            foreach (var (node, ip) in new[] { ("node-a", "10.255.0.1"), ("node-b", "10.255.0.2"), ("node-c", "10.255.0.3"), ("node-d", "10.255.0.4") })
                await silo.Client.Nodes.CreateAsync(Node(node, ip));
            await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "first", "net", "node-a"));
            blocks = [.. (await silo.Client.Networks.GetAsync("", "net")).Status.Blocks];
            var before = await PositionAsync(silo.Client);

            // fd00:80::9 lies in node a's block: the IPv4 address's free block must not become node b's.
            foreach (var v4 in new[] { "10.80.0.70", "10.80.0.130", "10.80.0.200" })
                await Fails(StatusCode.FailedPrecondition, () => silo.Client.Endpoints.CreateAsync(Asking("refused", "node-b", v4, "fd00:80::9")), "spec.ips[1]");
            // The IPv4 address is chosen, from a block node b does not hold yet.
            await Fails(StatusCode.FailedPrecondition, () => silo.Client.Endpoints.CreateAsync(Asking("refused", "node-b", "fd00:80::9")), "spec.ips[0]");
            Assert.Equal(before, await PositionAsync(silo.Client));
            Assert.Equal(blocks, (await silo.Client.Networks.GetAsync("", "net")).Status.Blocks);
        }
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false))
        {
            Assert.Equal(blocks, (await silo.Client.Networks.GetAsync("", "net")).Status.Blocks);
            // The three IPv4 blocks left are there for three more nodes.
            foreach (var node in new[] { "node-b", "node-c", "node-d" })
                await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "on-" + node, "net", node));
        }
    }

    [Fact]
    public async Task IPv4_DualStack_AndIPv6Services_Coexist()
    {
        await using var silo = await SiloInstance.StartAsync("--ControlPlane:ServiceIpv6Cidr=fd00:96::/112");
        await SeedAsync(silo.Client);

        var v4 = await silo.Client.Services.CreateAsync(Service("ns", "v4", "net"));
        var dual = await silo.Client.Services.CreateAsync(Family("dual", "PreferDualStack", []));
        var v6 = await silo.Client.Services.CreateAsync(Family("v6", "SingleStack", ["IPv6"]));
        var required = await silo.Client.Services.CreateAsync(Family("required", "RequireDualStack", ["IPv6"]));

        Assert.Equal(["IPv4"], v4.Spec.IpFamilies);
        Assert.Equal("SingleStack", v4.Spec.IpFamilyPolicy);
        Assert.StartsWith("10.96.", Assert.Single(v4.Status.ClusterIps));
        Assert.Equal(["IPv4", "IPv6"], dual.Spec.IpFamilies);
        Assert.Collection(dual.Status.ClusterIps, ip => Assert.StartsWith("10.96.", ip), ip => Assert.StartsWith("fd00:96::", ip));
        Assert.StartsWith("fd00:96::", Assert.Single(v6.Status.ClusterIps));
        Assert.Equal(["IPv6", "IPv4"], required.Spec.IpFamilies);
        Assert.Collection(required.Status.ClusterIps, ip => Assert.StartsWith("fd00:96::", ip), ip => Assert.StartsWith("10.96.", ip));
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.CreateAsync(Family("two", "SingleStack", ["IPv4", "IPv6"])), "spec.ip_families");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.CreateAsync(Family("odd", "MostlyStack", [])), "spec.ip_family_policy");
    }

    /// <summary>
    /// An update that names no families keeps the service's own (Kubernetes defaults an update
    /// from the stored object): re-applying a manifest changes nothing, and after the IPv6 range
    /// left the configuration it says that, not "is immutable".
    /// </summary>
    [Fact]
    public async Task AnUpdateWithoutFamilies_KeepsTheServicesOwn_AndNamesAMissingRange()
    {
        Service dual;
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false, "--ControlPlane:ServiceIpv6Cidr=fd00:96::/112"))
        {
            await SeedAsync(silo.Client);
            dual = await silo.Client.Services.CreateAsync(Family("dual", "PreferDualStack", []));
            var again = await silo.Client.Services.UpdateAsync(Family("dual", "", []));
            Assert.Equal(dual.Metadata.Etag, again.Metadata.Etag);
            Assert.Equal(["IPv4", "IPv6"], again.Spec.IpFamilies);
            Assert.Equal(dual.Status.ClusterIps, again.Status.ClusterIps);
        }
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false))
        {
            var error = await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.UpdateAsync(Family("dual", "PreferDualStack", [])), "spec.ip_families[1]");
            Assert.Contains("ServiceIpv6Cidr", error.Status.Detail);
            Assert.Equal(dual.Status.ClusterIps, (await silo.Client.Services.GetAsync("ns", "dual")).Status.ClusterIps);
        }
    }

    /// <summary>
    /// As Kubernetes: a single-stack service becomes dual-stack when its ip_family_policy says so
    /// (its primary address kept, an address of the other family taken), and single-stack again
    /// (the second address given back); its primary family never changes. Across a restart the
    /// address it took stays its own: the next service does not get it, and the one it gave back
    /// can be taken.
    /// </summary>
    [Fact]
    public async Task ASingleStackService_BecomesDualStackAndBack_KeepingItsPrimaryAddress()
    {
        Service dual;
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false, "--ControlPlane:ServiceIpv6Cidr=fd00:96::/112"))
        {
            await SeedAsync(silo.Client);
            var single = await silo.Client.Services.CreateAsync(Service("ns", "web", "net"));
            var primary = Assert.Single(single.Status.ClusterIps);
            dual = await silo.Client.Services.UpdateAsync(Family("web", "RequireDualStack", []));
            Assert.Equal(["IPv4", "IPv6"], dual.Spec.IpFamilies);
            Assert.Equal(primary, dual.Status.ClusterIps[0]);
            Assert.StartsWith("fd00:96::", dual.Status.ClusterIps[1]);
            var error = await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.UpdateAsync(Family("web", "PreferDualStack", ["IPv6", "IPv4"])), "spec.ip_families[0]");
            Assert.Contains("primary", error.Status.Detail);
        }
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false, "--ControlPlane:ServiceIpv6Cidr=fd00:96::/112"))
        {
            var held = dual.Status.ClusterIps[1];
            var other = await silo.Client.Services.CreateAsync(Family("other", "", ["IPv6"]));
            Assert.NotEqual(held, other.Status.ClusterIps[0]);
            await Fails(StatusCode.AlreadyExists, () => silo.Client.Services.CreateAsync(Family("copy", "", [], held)), "ns/web");

            var back = await silo.Client.Services.UpdateAsync(Family("web", "SingleStack", []));
            Assert.Equal(["IPv4"], back.Spec.IpFamilies);
            Assert.Equal([dual.Status.ClusterIps[0]], back.Status.ClusterIps);
            var copy = await silo.Client.Services.CreateAsync(Family("copy", "", [], held));
            Assert.Equal(held, copy.Status.ClusterIps[0]);

            // One that asked for both of its addresses keeps, single-stack, only the first it asked for.
            var asked = await silo.Client.Services.CreateAsync(Family("asked", "RequireDualStack", [], "10.96.0.77", "fd00:96::77"));
            var single = await silo.Client.Services.UpdateAsync(Family("asked", "SingleStack", []));
            Assert.Equal(["10.96.0.77"], single.Spec.ClusterIps);
            Assert.Equal(["10.96.0.77"], single.Status.ClusterIps);
            Assert.Equal("fd00:96::77", (await silo.Client.Services.CreateAsync(Family("reuse", "", [], "fd00:96::77"))).Status.ClusterIps[0]);
            Assert.Equal(asked.Status.ClusterIps[0], single.Status.ClusterIps[0]);
        }
    }

    /// <summary>
    /// As Kubernetes: an update may name the addresses an object holds (a client that read the
    /// object back and sends it again) without changing anything, and a service going dual-stack
    /// may name the second virtual IP it wants. A held or different address is refused naming
    /// the position and changes nothing; the address taken stays the service's across a restart.
    /// </summary>
    [Fact]
    public async Task AnUpdate_MayNameTheAddressesHeld_AndTheSecondVirtualIpAServiceGoingDualStackWants()
    {
        Service dual;
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false, "--ControlPlane:ServiceIpv6Cidr=fd00:96::/112"))
        {
            await SeedAsync(silo.Client);
            var web = await silo.Client.Services.CreateAsync(Service("ns", "web", "net"));
            var primary = Assert.Single(web.Status.ClusterIps);
            var endpoint = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "pod", "net", "node-a"));

            // Sent back with the addresses it holds: accepted, nothing changes but the labels.
            var again = Family("web", "", [], primary);
            again.Metadata.Labels.Add("tier", "front");
            var relabelled = await silo.Client.Services.UpdateAsync(again);
            Assert.Equal([primary], relabelled.Status.ClusterIps);
            Assert.Equal(["IPv4"], relabelled.Spec.IpFamilies);
            var pod = Endpoint("ns", "pod", "net", "node-a");
            pod.Spec.Ips.Add(endpoint.Status.Ips);
            pod.Metadata.Labels.Add("tier", "front");
            Assert.Equal(endpoint.Status.Ips, (await silo.Client.Endpoints.UpdateAsync(pod)).Status.Ips);
            var moved = Endpoint("ns", "pod", "net", "node-a");
            moved.Spec.Ips.Add("10.20.0.99");
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Endpoints.UpdateAsync(moved), "spec.ips");

            // Going dual-stack asking for a taken second address: refused, nothing changes.
            var holder = await silo.Client.Services.CreateAsync(Family("holder", "", ["IPv6"], "fd00:96::55"));
            var before = await PositionAsync(silo.Client);
            await Fails(StatusCode.AlreadyExists, () => silo.Client.Services.UpdateAsync(Family("web", "PreferDualStack", [], primary, "fd00:96::55")), "ns/holder");
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.UpdateAsync(Family("web", "PreferDualStack", [], primary, "fd00:97::5")), "spec.cluster_ips[1]");
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.UpdateAsync(Family("web", "PreferDualStack", [], "10.96.0.200", "fd00:96::56")), "spec.cluster_ips[0]");
            Assert.Equal(before, await PositionAsync(silo.Client));
            Assert.Equal([primary], (await silo.Client.Services.GetAsync("ns", "web")).Status.ClusterIps);

            // And a free one: taken, in the update's commit.
            dual = await silo.Client.Services.UpdateAsync(Family("web", "PreferDualStack", [], primary, "fd00:96::56"));
            Assert.Equal([primary, "fd00:96::56"], dual.Status.ClusterIps);
            Assert.Equal(["IPv4", "IPv6"], dual.Spec.IpFamilies);
            // Its second address is fixed from now on.
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.UpdateAsync(Family("web", "PreferDualStack", [], primary, "fd00:96::57")), "spec.cluster_ips[1]");
            Assert.Equal("fd00:96::55", holder.Status.ClusterIps[0]);
        }
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false, "--ControlPlane:ServiceIpv6Cidr=fd00:96::/112"))
        {
            await Fails(StatusCode.AlreadyExists, () => silo.Client.Services.CreateAsync(Family("copy", "", [], "fd00:96::56")), "ns/web");
            Assert.Equal(dual.Status.ClusterIps, (await silo.Client.Services.UpdateAsync(Family("web", "", [], [.. dual.Status.ClusterIps]))).Status.ClusterIps);
        }
    }

    [Fact]
    public async Task AService_GetsTheClusterIpItAsksFor_AndATakenOneNamesItsHolder()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);

        var web = await silo.Client.Services.CreateAsync(Family("web", "", [], "10.96.0.10"));
        Assert.Equal("10.96.0.10", Assert.Single(web.Status.ClusterIps));
        // The controller derives web's endpoint set: the position is taken once that is written.
        await using (var sets = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.ServiceEndpoints } }))
        {
            await sets.WaitForAsync(e => e.ServiceEndpoints?.Metadata.Name == "web", "web's endpoint set");
        }
        var before = await PositionAsync(silo.Client);

        await Fails(StatusCode.AlreadyExists, () => silo.Client.Services.CreateAsync(Family("copy", "", [], "10.96.0.10")), "ns/web");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.CreateAsync(Family("copy", "", [], "10.97.0.10")), "spec.cluster_ips[0]");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.CreateAsync(Family("copy", "", [], "fd00::10")), "spec.ip_families[0]");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.CreateAsync(Family("copy", "RequireDualStack", [])), "RequireDualStack");
        Assert.Equal(before, await PositionAsync(silo.Client));
        // Allocation skips the requested address.
        var others = await Task.WhenAll(Enumerable.Range(0, 20).Select(i => silo.Client.Services.CreateAsync(Service("ns", $"s{i}", "net"))));
        Assert.DoesNotContain("10.96.0.10", others.Select(s => s.Status.ClusterIps[0]));
    }

    private static Service External(string name, string target) => new()
    {
        Metadata = new ObjectMeta { Namespace = "ns", Name = name },
        Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = target },
    };

    /// <summary>
    /// As Kubernetes (and its DNS conformance test, which turns an ExternalName service into a
    /// ClusterIP one): a service changes type only to or from EXTERNAL_NAME. Becoming CLUSTER_IP
    /// claims virtual IPs in the update's commit (a taken one is refused and changes nothing);
    /// becoming EXTERNAL_NAME gives them back, so another service can take them, after a restart
    /// too.
    /// </summary>
    [Fact]
    public async Task AService_ChangesTypeOnlyToOrFromExternalName_TakingAndGivingBackItsAddresses()
    {
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false))
        {
            await SeedAsync(silo.Client);
            var web = await silo.Client.Services.CreateAsync(Family("web", "", [], "10.96.0.10"));
            var headless = Service("ns", "headless", "net");
            headless.Spec.Type = ServiceType.Headless;
            await silo.Client.Services.CreateAsync(headless);
            await silo.Client.Services.CreateAsync(External("ext", "example.com"));
            // The controller derives web's and headless's endpoint sets: the position is taken
            // once those are written.
            await using (var sets = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.ServiceEndpoints } }))
            {
                var derived = new HashSet<string>();
                await sets.WaitForAsync(
                    e => e.ServiceEndpoints is { } set && derived.Add(set.Metadata.Name) && derived.IsSupersetOf(["web", "headless"]),
                    "web's and headless's endpoint sets");
            }
            var before = await PositionAsync(silo.Client);

            // CLUSTER_IP and HEADLESS do not turn into each other.
            var toHeadless = web.Clone();
            toHeadless.Spec.Type = ServiceType.Headless;
            toHeadless.Spec.ClusterIps.Clear();
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.UpdateAsync(toHeadless), "spec.type: cannot change from CLUSTER_IP to HEADLESS");
            // ExternalName to ClusterIP asking for a taken address, a missing network, or none.
            var taken = Family("ext", "", [], "10.96.0.10");
            await Fails(StatusCode.AlreadyExists, () => silo.Client.Services.UpdateAsync(taken), "ns/web");
            await Fails(StatusCode.FailedPrecondition, () => silo.Client.Services.UpdateAsync(Service("ns", "ext", "nowhere")), "spec.network");
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Services.UpdateAsync(Service("ns", "ext", "")), "spec.network");
            Assert.Equal(before, await PositionAsync(silo.Client));
            Assert.Equal(ServiceType.ExternalName, (await silo.Client.Services.GetAsync("ns", "ext")).Spec.Type);

            // web becomes an alias and gives its address back; ext takes it.
            var alias = External("web", "example.org");
            var aliased = await silo.Client.Services.UpdateAsync(alias);
            Assert.Equal(ServiceType.ExternalName, aliased.Spec.Type);
            Assert.Empty(aliased.Status.ClusterIps);
            Assert.Empty(aliased.Spec.IpFamilies);
            var ext = await silo.Client.Services.UpdateAsync(Family("ext", "", [], "10.96.0.10"));
            Assert.Equal((ServiceType.ClusterIp, "10.96.0.10"), (ext.Spec.Type, Assert.Single(ext.Status.ClusterIps)));
            Assert.Equal(["IPv4"], ext.Spec.IpFamilies);
            // headless becomes an alias and back: it holds no address either way.
            await silo.Client.Services.UpdateAsync(External("headless", "example.net"));
            var back = await silo.Client.Services.UpdateAsync(headless);
            Assert.Equal(ServiceType.Headless, back.Spec.Type);
            Assert.Empty(back.Status.ClusterIps);
        }
        await using (var silo = await SiloInstance.StartInAsync(_data, ownsDirectory: false))
        {
            // After a restart the store still says who holds what: web, a ClusterIP again, gets
            // a new address, not ext's.
            await Fails(StatusCode.AlreadyExists, () => silo.Client.Services.CreateAsync(Family("copy", "", [], "10.96.0.10")), "ns/ext");
            var web = await silo.Client.Services.UpdateAsync(Service("ns", "web", "net"));
            Assert.NotEqual("10.96.0.10", Assert.Single(web.Status.ClusterIps));
            // ext gives its address back on becoming an alias again; copy can take it now.
            await silo.Client.Services.UpdateAsync(External("ext", "example.com"));
            Assert.Equal("10.96.0.10", Assert.Single((await silo.Client.Services.CreateAsync(Family("copy", "", [], "10.96.0.10"))).Status.ClusterIps));
        }
    }
}
