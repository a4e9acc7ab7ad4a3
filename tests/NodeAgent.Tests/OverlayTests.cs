using ControlPlane.Contracts.V1;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>Three hosts, real VXLAN between them, pings between workloads.</summary>
public sealed class OverlayTests
{
    [Fact]
    public async Task Endpoints_OnThreeHosts_ReachEachOther()
    {
        await using var cluster = await Cluster.StartAsync(hosts: 3);
        await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
        await cluster.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });

        var ips = new Dictionary<string, string>();
        for (var n = 1; n <= 3; n++)
        {
            for (var k = 1; k <= 2; k++)
            {
                var name = $"p{n}{k}";
                var attached = await cluster.AttachAsync(n, name, "blue");
                ips[name] = attached.Ips[0];
            }
        }

        foreach (var (from, _) in ips)
        {
            foreach (var (to, address) in ips.Where(p => p.Key != from))
            {
                Assert.True(cluster.Ping(from, address, TimeSpan.FromSeconds(10)), $"{from} cannot reach {to} ({address})\n{cluster.Diagnostics(from)}");
            }
        }

        // Exactly the expected kernel objects on host 1: one neighbour, FDB entry and nexthop per remote host.
        var neighbours = Shell.Must("ip", "-n", cluster.Host(1), "neigh", "show", "dev", "cpvx100", "nud", "permanent");
        Assert.Equal(2, neighbours.Split('\n', StringSplitOptions.RemoveEmptyEntries).Length);
        var fdb = Shell.Must("ip", "netns", "exec", cluster.Host(1), "bridge", "fdb", "show", "dev", "cpvx100").Split('\n').Count(l => l.Contains(" dst "));
        Assert.Equal(2, fdb);
        var routes = Shell.Must("ip", "-n", cluster.Host(1), "route", "show", "proto", "252").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2 + 2, routes.Length); // a block per remote host, and a /32 per local endpoint
    }
}
