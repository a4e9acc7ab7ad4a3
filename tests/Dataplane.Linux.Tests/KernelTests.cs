using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Netns;

namespace ControlPlane.Dataplane.Linux.Tests;

/// <summary>
/// The library against the real kernel, inside network namespaces each test creates and always
/// removes; what it programmed is read back with iproute2, a tool we did not write.
/// </summary>
public sealed class KernelTests : IDisposable
{
    private const byte Protocol = 252; // routes carrying this protocol number are ours
    private readonly string _name = "cpnl" + Guid.NewGuid().ToString("N")[..8];
    private readonly string _peer = "cpnp" + Guid.NewGuid().ToString("N")[..8];
    private readonly NetworkNamespace _namespace;

    public KernelTests()
    {
        Run("ip", "netns", "add", _name);
        Run("ip", "netns", "add", _peer);
        _namespace = NetworkNamespace.Enter(_name);
    }

    private static string Run(params string[] command) => Shell.Run(command);

    private string InNamespace(params string[] command) => Run(["ip", "netns", "exec", _name, .. command]);

    private T Netlink<T>(Func<RouteNetlink, T> work) => _namespace.Invoke(() =>
    {
        using var rtnl = RouteNetlink.Open();
        return work(rtnl);
    });

    [Fact]
    public void Vxlan_IsCreatedAsSpecified_AndACreateOfAnExistingOneIsExists()
    {
        var link = Netlink(rtnl =>
        {
            rtnl.CreateVxlan("cpvx100", 100, IPAddress.Parse("10.99.0.1"), 4789, 1450, PhysicalAddress.Parse("02-00-00-00-01-00"));
            var created = rtnl.FindLink("cpvx100")!;
            rtnl.SetLink(created.Index, up: true);
            return rtnl.FindLink("cpvx100")!;
        });

        Assert.Equal("vxlan", link.Kind);
        Assert.Equal(1450, link.Mtu);
        Assert.True(link.Up);
        var shown = InNamespace("ip", "-d", "link", "show", "cpvx100");
        Assert.Contains("vxlan id 100 local 10.99.0.1", shown);
        Assert.Contains("dstport 4789", shown);
        Assert.Contains("nolearning", shown);
        Assert.Contains("02:00:00:00:01:00", shown);

        var error = Assert.Throws<NetlinkException>(() => Netlink(rtnl => { rtnl.CreateVxlan("cpvx100", 100, IPAddress.Parse("10.99.0.1"), 4789, 1450); return 0; }));
        Assert.True(error.IsExists);
    }

    [Fact]
    public void Batch_NeighbourFdbAndOnlinkRoute_ReadBackExactly_AndDeletesReportMissingOnes()
    {
        var vtep = IPAddress.Parse("10.250.0.2");
        var mac = PhysicalAddress.Parse("02-AA-BB-CC-DD-02");
        var failures = Netlink(rtnl =>
        {
            rtnl.CreateVxlan("cpvx7", 7, IPAddress.Parse("10.99.0.1"), 4789, 1450);
            var index = rtnl.FindLink("cpvx7")!.Index;
            rtnl.SetLink(index, up: true);
            rtnl.AddAddress(index, IPAddress.Parse("10.250.0.1"), 32);
            // The order a node agent uses: neighbour, FDB, then the route.
            return rtnl.Batch()
                .ReplaceNeighbour(index, vtep, mac)
                .AppendFdb(index, mac, IPAddress.Parse("10.99.0.2"))
                .ReplaceRoute(IPAddress.Parse("10.20.1.0"), 26, vtep, index, Protocol, onlink: true)
                .ReplaceRoute(IPAddress.Parse("fd00:20:0:1::"), 122, null, index, Protocol)
                .Execute();
        });

        Assert.Empty(failures);
        Assert.Contains("10.250.0.2 lladdr 02:aa:bb:cc:dd:02 PERMANENT", InNamespace("ip", "neigh", "show", "dev", "cpvx7"));
        Assert.Contains("02:aa:bb:cc:dd:02 dst 10.99.0.2 self permanent", InNamespace("bridge", "fdb", "show", "dev", "cpvx7"));
        Assert.Equal("10.20.1.0/26 via 10.250.0.2 dev cpvx7 proto 252 onlink", InNamespace("ip", "route", "show", "10.20.1.0/26").Trim());
        Assert.Contains("fd00:20:0:1::/122 dev cpvx7 proto 252", InNamespace("ip", "-6", "route", "show", "fd00:20:0:1::/122"));
        var (routes, fdb) = Netlink(rtnl => (rtnl.ListRoutes(2, Protocol), rtnl.ListFdb(rtnl.FindLink("cpvx7")!.Index)));
        var route = Assert.Single(routes);
        Assert.Equal((IPAddress.Parse("10.20.1.0"), 26, vtep, true), (route.Destination, route.PrefixLength, route.Gateway, route.Onlink));
        Assert.Contains(fdb, e => e.Mac.Equals(mac) && e.Destination!.Equals(IPAddress.Parse("10.99.0.2")));

        // Remove in reverse; deleting what is already gone is reported as not found, by change.
        var removal = Netlink(rtnl =>
        {
            var index = rtnl.FindLink("cpvx7")!.Index;
            return rtnl.Batch()
                .DeleteRoute(IPAddress.Parse("10.20.1.0"), 26, index, Protocol)
                .DeleteRoute(IPAddress.Parse("10.20.9.0"), 26, index, Protocol)
                .DeleteFdb(index, mac, IPAddress.Parse("10.99.0.2"))
                .DeleteNeighbour(index, vtep)
                .Execute();
        });
        var (change, error) = Assert.Single(removal);
        Assert.Equal("route 10.20.9.0/26", change);
        Assert.True(error.IsNotFound);
        Assert.Equal("", InNamespace("ip", "route", "show", "proto", "252").Trim());
        Assert.DoesNotContain("02:aa:bb:cc:dd:02", InNamespace("bridge", "fdb", "show", "dev", "cpvx7"));
    }

    [Fact]
    public void NexthopObjects_CarryRoutes_AndRemoveInReverse()
    {
        var failures = Netlink(rtnl =>
        {
            rtnl.CreateVxlan("cpvx8", 8, IPAddress.Parse("10.99.0.1"), 4789, 1450);
            var index = rtnl.FindLink("cpvx8")!.Index;
            rtnl.SetLink(index, up: true);
            // The VTEP's own address: it also brings the main table into being, which the
            // kernel needs to accept an onlink gateway.
            rtnl.AddAddress(index, IPAddress.Parse("10.250.0.1"), 32);
            return rtnl.Batch()
                .AddNexthop(7001, IPAddress.Parse("10.250.0.7"), index, Protocol)
                .ReplaceRouteVia(IPAddress.Parse("10.20.7.0"), 26, 7001, Protocol)
                .ReplaceRouteVia(IPAddress.Parse("10.20.7.64"), 26, 7001, Protocol)
                .Execute();
        });

        Assert.Empty(failures);
        Assert.Contains("id 7001 via 10.250.0.7 dev cpvx8 scope link proto 252 onlink", InNamespace("ip", "nexthop", "show"));
        Assert.Contains("10.20.7.0/26 nhid 7001 via 10.250.0.7 dev cpvx8 proto 252 onlink", InNamespace("ip", "route", "show"));
        Assert.Contains("10.20.7.64/26 nhid 7001", InNamespace("ip", "route", "show"));

        var removal = Netlink(rtnl =>
        {
            return rtnl.Batch()
                .DeleteRoute(IPAddress.Parse("10.20.7.0"), 26, outputIndex: 0, Protocol)
                .DeleteRoute(IPAddress.Parse("10.20.7.64"), 26, outputIndex: 0, Protocol)
                .DeleteNexthop(7001)
                .Execute();
        });
        Assert.Empty(removal);
        Assert.Equal("", InNamespace("ip", "nexthop", "show").Trim());
    }

    [Fact]
    public void Veth_PeerIsCreatedInsideAnotherNamespace()
    {
        using var peerNamespace = File.OpenHandle("/var/run/netns/" + _peer);
        Netlink(rtnl =>
        {
            rtnl.CreateVeth("cpve-host", "eth0", 1450, (int)peerNamespace.DangerousGetHandle());
            var host = rtnl.FindLink("cpve-host")!;
            rtnl.SetLink(host.Index, up: true, mac: PhysicalAddress.Parse("EE-EE-EE-EE-EE-EE"));
            return host.Index;
        });

        Assert.Contains("cpve-host", InNamespace("ip", "link", "show"));
        Assert.Contains("ee:ee:ee:ee:ee:ee", InNamespace("ip", "link", "show", "cpve-host"));
        var peer = Run("ip", "netns", "exec", _peer, "ip", "-d", "link", "show", "eth0");
        Assert.Contains("mtu 1450", peer);
        Assert.Contains("veth", peer);
    }

    [Fact]
    public void Batch_TenThousandFdbEntries_AreAllProgrammedWithFewAcks()
    {
        var count = Netlink(rtnl =>
        {
            rtnl.CreateVxlan("cpvx9", 9, IPAddress.Parse("10.99.0.1"), 4789, 1450);
            var index = rtnl.FindLink("cpvx9")!.Index;
            var batch = rtnl.Batch();
            for (var i = 0; i < 10_000; i++)
            {
                var mac = new PhysicalAddress([0x02, 0x01, 0, (byte)(i >> 16), (byte)(i >> 8), (byte)i]);
                batch.AppendFdb(index, mac, new IPAddress([10, 98, (byte)(i >> 8), (byte)i]));
            }
            Assert.Empty(batch.Execute());
            return rtnl.ListFdb(index).Count(e => e.Destination is not null);
        });
        Assert.Equal(10_000, count);
    }

    public void Dispose()
    {
        _namespace.Dispose();
        Run("ip", "netns", "del", _name);
        Run("ip", "netns", "del", _peer);
    }
}
