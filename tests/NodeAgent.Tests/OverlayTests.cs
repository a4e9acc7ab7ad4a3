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
        // The network's own table: a block per remote host, a /32 per local endpoint, the network's CIDR unreachable, and the throw default.
        var routes = Shell.Must("ip", "-n", cluster.Host(1), "route", "show", "table", "100100", "proto", "252").Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2 + 2 + 2, routes.Length);
        Assert.Equal("", Shell.Must("ip", "-n", cluster.Host(1), "route", "show", "proto", "252").Trim());
    }

    [Fact]
    public async Task DualStackNetwork_CarriesIpv6AcrossHosts()
    {
        await using var cluster = await Cluster.StartAsync(hosts: 2);
        await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
        await cluster.Client.Networks.CreateAsync(new Network
        {
            Metadata = new ObjectMeta { Name = "dual" },
            Spec = new NetworkSpec { Vni = 300, Ipv4Cidr = "10.40.0.0/16", Ipv6Cidr = "fd00:40::/64" },
        });
        var a = await cluster.AttachAsync(1, "a", "dual");
        var b = await cluster.AttachAsync(2, "b", "dual");
        var c = await cluster.AttachAsync(2, "c", "dual");
        Assert.Equal(2, a.Ips.Count);

        Assert.True(cluster.Ping("a", b.Ips[1], TimeSpan.FromSeconds(10)), cluster.Diagnostics("a"));
        Assert.True(cluster.Ping("b", a.Ips[1], TimeSpan.FromSeconds(10)), cluster.Diagnostics("b"));
        Assert.True(cluster.Ping("b", c.Ips[1], TimeSpan.FromSeconds(10)), cluster.Diagnostics("b"));
        Assert.True(cluster.Ping("a", b.Ips[0], TimeSpan.FromSeconds(10)), cluster.Diagnostics("a"));
        Assert.Contains("nhid", Shell.Must("ip", "-n", cluster.Host(1), "-6", "route", "show", "table", "100300"));
    }

    /// <summary>
    /// A local endpoint's host end is put back at the next reconcile when it goes missing behind
    /// the agent's back: its host routes and neighbour entries deleted by hand, or lost with its
    /// host veth set down and up (the kernel drops them then). The endpoint is reachable again
    /// from the other host, in both families.
    /// </summary>
    [Fact]
    public async Task A_local_endpoints_host_end_is_put_back_at_the_next_reconcile()
    {
        await using var cluster = await Cluster.StartAsync(2, "--Agent:ResyncInterval=00:00:02");
        await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
        await cluster.Client.Networks.CreateAsync(new Network
        {
            Metadata = new ObjectMeta { Name = "mended" },
            Spec = new NetworkSpec { Vni = 410, Ipv4Cidr = "10.41.0.0/16", Ipv6Cidr = "fd00:41::/64" },
        });
        var a = await cluster.AttachAsync(1, "a", "mended");
        await cluster.AttachAsync(2, "b", "mended");
        Assert.True(cluster.Ping("b", a.Ips[0], TimeSpan.FromSeconds(10)), cluster.Diagnostics("b"));
        var (host, veth) = (cluster.Host(1), Dataplane.Names.EndpointVeth("default/a"));
        const string PutBack = "missing pieces of local endpoints' host ends";

        var before = cluster.LogLines(1, PutBack);
        foreach (var ip in a.Ips)
        {
            Shell.Must("ip", "-n", host, "route", "del", ip, "table", "100410");
            Shell.Must("ip", "-n", host, "neigh", "del", ip, "dev", veth);
        }
        await cluster.WaitForLogAsync(1, PutBack, before + 1, TimeSpan.FromSeconds(20));
        Assert.True(cluster.Ping("b", a.Ips[0], TimeSpan.FromSeconds(10)), cluster.Diagnostics("b"));
        Assert.True(cluster.Ping("b", a.Ips[1], TimeSpan.FromSeconds(10)), cluster.Diagnostics("b"));

        Shell.Must("ip", "-n", host, "link", "set", veth, "down");
        Shell.Must("ip", "-n", host, "link", "set", veth, "up");
        await cluster.WaitForLogAsync(1, PutBack, before + 2, TimeSpan.FromSeconds(20));
        Assert.True(cluster.Ping("b", a.Ips[0], TimeSpan.FromSeconds(10)), cluster.Diagnostics("b"));
        Assert.True(cluster.Ping("b", a.Ips[1], TimeSpan.FromSeconds(10)), cluster.Diagnostics("b"));
        Assert.Contains(a.Ips[0], Shell.Must("ip", "-n", host, "route", "show", "table", "100410"));
    }

    [Fact]
    public async Task TwoNetworks_NeverExchangeAPacket()
    {
        await using var cluster = await Cluster.StartAsync(hosts: 2);
        await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
        await cluster.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });
        await cluster.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "green" }, Spec = new NetworkSpec { Vni = 200, Ipv4Cidr = "10.30.0.0/16" } });
        var blue2 = (await cluster.AttachAsync(2, "blue2", "blue")).Ips[0];
        var green1 = (await cluster.AttachAsync(1, "green1", "green")).Ips[0];
        var green2 = (await cluster.AttachAsync(2, "green2", "green")).Ips[0];
        var blue1 = (await cluster.AttachAsync(1, "blue1", "blue")).Ips[0];

        // Within each network, across hosts.
        Assert.True(cluster.Ping("blue1", blue2, TimeSpan.FromSeconds(10)), cluster.Diagnostics("blue1"));
        Assert.True(cluster.Ping("green1", green2, TimeSpan.FromSeconds(10)), cluster.Diagnostics("green1"));
        // Across networks: neither on the same host nor across hosts, in either direction.
        Assert.False(cluster.Ping("blue1", green1, TimeSpan.FromSeconds(2)));
        Assert.False(cluster.Ping("blue1", green2, TimeSpan.FromSeconds(2)));
        Assert.False(cluster.Ping("green2", blue2, TimeSpan.FromSeconds(2)));
        Assert.False(cluster.Ping("green2", blue1, TimeSpan.FromSeconds(2)));
    }
}
