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

    private static bool InBlock(IPAddress ip, string cidr)
    {
        var prefix = Grains.Ipam.IpPrefix.Parse("block", cidr);
        return prefix.Contains(Grains.Ipam.IpPrefix.ToNumber(ip));
    }
}
