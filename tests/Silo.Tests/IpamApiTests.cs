using System.Net;
using Grpc.Core;
using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

public sealed class IpamApiTests
{
    [Fact]
    public async Task CreateEndpoint_ThousandConcurrent_AllAddressesDistinct()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client, cidr: "10.40.0.0/22");
        await silo.Client.Nodes.CreateAsync(Node("node-b", "10.255.0.2"));

        var endpoints = await Task.WhenAll(Enumerable.Range(0, 1000).Select(i =>
            silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"pod-{i}", "net", i % 2 == 0 ? "node-a" : "node-b"))));

        var ips = endpoints.Select(e => Assert.Single(e.Status.Ips)).ToList();
        Assert.Equal(1000, ips.Distinct().Count());
        Assert.DoesNotContain("10.40.0.0", ips);
        Assert.DoesNotContain("10.40.0.1", ips);
        Assert.DoesNotContain("10.40.3.255", ips);
        // Strict block affinity: every address lies in a block assigned to its endpoint's node.
        var network = await silo.Client.Networks.GetAsync("", "net");
        foreach (var endpoint in endpoints)
        {
            var ip = IPAddress.Parse(endpoint.Status.Ips[0]);
            Assert.Contains(network.Status.Blocks, b => b.Node == endpoint.Spec.Node && InBlock(ip, b.Cidr));
        }
    }

    [Fact]
    public async Task CreateEndpoint_WhenExhausted_IsResourceExhaustedAndChangesNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        // A /27 in one block: 32 addresses, less network, gateway and broadcast.
        await SeedAsync(silo.Client, cidr: "10.41.0.0/27", block: 27);
        await Task.WhenAll(Enumerable.Range(0, 29).Select(i => silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"pod-{i}", "net", "node-a"))));
        var before = await PositionAsync(silo.Client);

        var error = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Endpoints.CreateAsync(Endpoint("ns", "one-too-many", "net", "node-a")));

        Assert.Equal(StatusCode.ResourceExhausted, error.StatusCode);
        Assert.Equal(before, await PositionAsync(silo.Client));
        await Assert.ThrowsAsync<RpcException>(() => silo.Client.Endpoints.GetAsync("ns", "one-too-many"));

        // Deleting one frees exactly one address.
        await silo.Client.Endpoints.DeleteAsync("ns", "pod-3");
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "replacement", "net", "node-a"));
    }

    [Fact]
    public async Task CreateEndpoint_DualStackNetwork_GetsOneAddressPerFamily()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("ns"));
        await silo.Client.Nodes.CreateAsync(Node("node-a"));
        await silo.Client.Networks.CreateAsync(Network("dual", 300, "10.42.0.0/24", "fd00:42::/64"));

        var endpoint = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "pod", "dual", "node-a"));

        Assert.Equal(2, endpoint.Status.Ips.Count);
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetwork, IPAddress.Parse(endpoint.Status.Ips[0]).AddressFamily);
        Assert.Equal(System.Net.Sockets.AddressFamily.InterNetworkV6, IPAddress.Parse(endpoint.Status.Ips[1]).AddressFamily);
        Assert.Equal("10.42.0.1", endpoint.Status.Ipv4Gateway);
        Assert.Equal("fd00:42::1", endpoint.Status.Ipv6Gateway);
        Assert.Matches("^([0-9a-f]{2}:){5}[0-9a-f]{2}$", endpoint.Status.Mac);
    }

    [Fact]
    public async Task Ipv6Slash48_WithDefaultBlocks_GivesTheFirstEndpointAnAddress()
    {
        // 2^74 blocks of /122: the block count once truncated to 0 ("no free block left").
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("ns"));
        await silo.Client.Nodes.CreateAsync(Node("node-a"));
        var network = await silo.Client.Networks.CreateAsync(Network("wide", 480, "10.48.0.0/24", "fd00:48::/48"));
        Assert.Equal(122u, network.Spec.Ipv6BlockPrefixLength);

        var first = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "first", "wide", "node-a"));
        var second = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "second", "wide", "node-a"));

        Assert.Equal(["10.48.0.2", "fd00:48::2"], first.Status.Ips);
        Assert.Equal(["10.48.0.3", "fd00:48::3"], second.Status.Ips);
        Assert.Contains((await silo.Client.Networks.GetAsync("", "wide")).Status.Blocks, b => b.Cidr == "fd00:48::/122" && b.Node == "node-a");
    }

    [Fact]
    public async Task Ipv6Slash64Blocks_Allocate_AndAFailureHalfWayLeaksNoAddress()
    {
        // /64 blocks (2^64 addresses each) once failed INTERNAL after taking the IPv4 address, which leaked.
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("ns"));
        await silo.Client.Nodes.CreateAsync(Node("node-a"));
        await silo.Client.Nodes.CreateAsync(Node("node-b", "10.255.0.2"));
        var spec = Network("wide", 640, "10.64.0.0/28", "fd00:64::/48", block: 29);
        spec.Spec.Ipv6BlockPrefixLength = 64;
        await silo.Client.Networks.CreateAsync(spec);

        var first = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "first", "wide", "node-a"));
        Assert.Equal(["10.64.0.2", "fd00:64::2"], first.Status.Ips);
        var far = Endpoint("ns", "far", "wide", "node-b");
        far.Spec.Ips.Add("fd00:64:0:7::5");
        Assert.Equal("fd00:64:0:7::5", (await silo.Client.Endpoints.CreateAsync(far)).Status.Ips[1]);
        Assert.Contains((await silo.Client.Networks.GetAsync("", "wide")).Status.Blocks, b => b.Cidr == "fd00:64:0:7::/64" && b.Node == "node-b");
        var before = await PositionAsync(silo.Client);

        // The IPv4 address is taken first, then the IPv6 request is refused (the gateway is reserved).
        var broken = Endpoint("ns", "broken", "wide", "node-a");
        broken.Spec.Ips.Add("fd00:64::1");
        var error = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Endpoints.CreateAsync(broken));
        Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
        Assert.Equal(before, await PositionAsync(silo.Client));

        // The IPv4 address it took in memory went back: node a's next endpoint can have it.
        var next = Endpoint("ns", "next", "wide", "node-a");
        next.Spec.Ips.Add("10.64.0.3");
        Assert.Equal(["10.64.0.3", "fd00:64::3"], (await silo.Client.Endpoints.CreateAsync(next)).Status.Ips);
    }

    [Fact]
    public async Task BlockLengthOutsideTheFamilysRange_IsInvalidArgumentNamingIt_AndChangesNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var before = await PositionAsync(silo.Client);

        foreach (var (v4Block, v6Block, field) in new[]
        {
            (31u, 0u, "spec.ipv4_block_prefix_length"), (15u, 0u, "spec.ipv4_block_prefix_length"),
            (0u, 127u, "spec.ipv6_block_prefix_length"), (0u, 128u, "spec.ipv6_block_prefix_length"),
            (0u, 40u, "spec.ipv6_block_prefix_length"), (0u, uint.MaxValue, "spec.ipv6_block_prefix_length"),
        })
        {
            var network = Network("odd", 700, "10.70.0.0/16", "fd00:70::/48", block: v4Block);
            network.Spec.Ipv6BlockPrefixLength = v6Block;
            var error = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Networks.CreateAsync(network));
            Assert.Equal(StatusCode.InvalidArgument, error.StatusCode);
            Assert.StartsWith(field + ":", error.Status.Detail);
        }
        Assert.Equal(before, await PositionAsync(silo.Client));
    }

    private static bool InBlock(IPAddress ip, string cidr)
    {
        var prefix = Grains.Ipam.AddressInput.ParsePrefix("block", cidr);
        return prefix.Contains(Contracts.Addressing.IpPrefix.ToNumber(ip));
    }
}
