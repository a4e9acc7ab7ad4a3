using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.Dataplane.Linux.Overlay;

namespace ControlPlane.Dataplane.Linux.Tests;

/// <summary>The overlay driver against the kernel, in a namespace the test creates and removes.</summary>
public sealed class VxlanOverlayTests : IDisposable
{
    private const byte Protocol = 252;
    private readonly string _name = "cpov" + Guid.NewGuid().ToString("N")[..8];
    private readonly NetworkNamespace _namespace;

    public VxlanOverlayTests()
    {
        Run("ip", "netns", "add", _name);
        _namespace = NetworkNamespace.Enter(_name);
    }

    private static RemoteVtep Remote(int n, params string[] blocks) => new(
        [IPAddress.Parse($"10.20.{n}.0")], PhysicalAddress.Parse($"02-00-00-00-00-0{n}"), IPAddress.Parse($"10.99.0.{n}"),
        [.. blocks.Select(b => (IPAddress.Parse(b.Split('/')[0]), int.Parse(b.Split('/')[1])))]);

    private static OverlaySpec Spec(params RemoteVtep[] remotes) =>
        new("cpvx100", 100, 4789, IPAddress.Parse("10.99.0.1"), 1450, PhysicalAddress.Parse("02-00-00-00-00-01"), [IPAddress.Parse("10.20.0.0")], remotes,
            Table: 100_100, RulePriority: 10_000);

    private (IReadOnlyList<(string, NetlinkException)> Failures, int Changes) Apply(OverlaySpec spec) => _namespace.Invoke(() =>
    {
        using var rtnl = RouteNetlink.Open();
        var overlay = new VxlanOverlay(rtnl, Protocol);
        var failures = overlay.Apply(spec);
        return (failures, overlay.LastChanges);
    });

    [Fact]
    public void Apply_ProgramsExactlyTheSpec_ThenOnlyTheDifference()
    {
        var (failures, changes) = Apply(Spec(Remote(2, "10.20.2.0/26", "10.20.2.64/26"), Remote(3, "10.20.3.0/26")));
        Assert.Empty(failures);
        Assert.Equal(2 + 2 + 2 + 3 + 1 + 1, changes); // + the table's throw default and the device's rule
        Assert.Equal(
            ["10.20.2.0 lladdr 02:00:00:00:00:02 PERMANENT", "10.20.3.0 lladdr 02:00:00:00:00:03 PERMANENT"],
            Lines("ip", "neigh", "show", "dev", "cpvx100"));
        Assert.Equal(
            ["02:00:00:00:00:02 dst 10.99.0.2 self permanent", "02:00:00:00:00:03 dst 10.99.0.3 self permanent"],
            Lines("bridge", "fdb", "show", "dev", "cpvx100").Where(l => l.Contains("dst")));
        var routes = Lines("ip", "route", "show", "table", "100100", "proto", "252").Where(r => r.Contains("nhid")).ToList();
        Assert.Equal(3, routes.Count);
        Assert.Contains("throw default", Run("ip", "netns", "exec", _name, "ip", "route", "show", "table", "100100"));
        Assert.Contains("10000:\tfrom all iif cpvx100 lookup 100100 proto 252", Run("ip", "netns", "exec", _name, "ip", "rule", "show"));
        Assert.Equal("", Run("ip", "netns", "exec", _name, "ip", "route", "show", "proto", "252").Trim());
        Assert.Contains(routes, r => r.StartsWith("10.20.2.64/26 nhid", StringComparison.Ordinal) && r.Contains("via 10.20.2.0 dev cpvx100"));
        Assert.Contains("vxlan id 100 local 10.99.0.1", Run("ip", "netns", "exec", _name, "ip", "-d", "link", "show", "cpvx100"));

        // The same spec again: nothing to do.
        Assert.Equal(0, Apply(Spec(Remote(2, "10.20.2.0/26", "10.20.2.64/26"), Remote(3, "10.20.3.0/26"))).Changes);

        // Node 3 leaves, node 4 arrives, node 2 loses a block: only those entries change.
        Run("ip", "netns", "exec", _name, "ip", "route", "add", "10.77.0.0/24", "dev", "cpvx100", "proto", "static");
        (failures, changes) = Apply(Spec(Remote(2, "10.20.2.0/26"), Remote(4, "10.20.4.0/26")));
        Assert.Empty(failures);
        Assert.Equal(1 + 4 + 4, changes);
        Assert.Equal(
            ["10.20.2.0 lladdr 02:00:00:00:00:02 PERMANENT", "10.20.4.0 lladdr 02:00:00:00:00:04 PERMANENT"],
            Lines("ip", "neigh", "show", "dev", "cpvx100"));
        Assert.Equal(["10.20.2.0/26", "10.20.4.0/26"], Lines("ip", "route", "show", "table", "100100", "proto", "252").Where(r => r.Contains("nhid")).Select(r => r.Split(' ')[0]).Order());
        // Someone else's route on our device is not ours to touch.
        Assert.Contains("10.77.0.0/24 dev cpvx100 proto static", Run("ip", "netns", "exec", _name, "ip", "route", "show"));
    }

    private List<string> Lines(params string[] command) =>
        [.. Run(["ip", "netns", "exec", _name, .. command]).Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Order()];

    private static string Run(params string[] command) => Shell.Run(command);

    public void Dispose()
    {
        _namespace.Dispose();
        Run("ip", "netns", "del", _name);
    }
}
