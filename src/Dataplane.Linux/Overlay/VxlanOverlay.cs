using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Overlay;

/// <summary>
/// Makes one network's VXLAN overlay on this node match its spec (after flannel's L3 VXLAN and
/// Calico's drivers). Level-triggered: each <see cref="Apply"/> reads the kernel back and changes
/// only the difference, so a restarted agent converges without touching live entries, and a
/// failed change is simply retried on the next apply.
/// <list type="bullet">
/// <item>Per remote node: a permanent neighbour (VTEP IP → VTEP MAC), an FDB entry (VTEP MAC →
/// underlay IP), a nexthop object (via the VTEP IP, onlink) and one route per block through it —
/// O(nodes) entries, no flooding, no learning, and route cost linear in the table size.</item>
/// <item>Order: additions go neighbour → FDB → nexthop → routes; removals go routes → nexthops →
/// FDB → neighbours, so no route ever points at a VTEP that cannot be reached.</item>
/// <item>Isolation: the network's routes live in its own table, ending in an unreachable default,
/// and a rule sends traffic arriving on the device to that table only.</item>
/// <item>Ours: the device by name, routes, nexthops and rules by protocol number, neighbours and
/// FDB entries by living on our device. Nothing else is touched.</item>
/// </list>
/// </summary>
public sealed class VxlanOverlay(RouteNetlink rtnl, byte protocol)
{
    /// <summary>Changes made by the last apply (0 when the kernel already matched).</summary>
    public int LastChanges { get; private set; }

    /// <summary>Applies the spec; returns the failures (they are retried on the next call).</summary>
    public IReadOnlyList<(string Change, NetlinkException Error)> Apply(OverlaySpec spec)
    {
        var index = EnsureDevice(spec);
        var failures = new List<(string, NetlinkException)>();
        var changes = 0;

        var wantedNeighbours = spec.Remotes.ToDictionary(r => r.VtepIp, r => r.VtepMac);
        var wantedFdb = spec.Remotes.ToDictionary(r => r.VtepMac, r => r.Underlay);
        var wantedNexthops = spec.Remotes.ToDictionary(r => NexthopId(spec.Device, r.VtepIp), r => r.VtepIp);
        var wantedRoutes = spec.Remotes
            .SelectMany(r => r.Blocks.Select(b => (Key: $"{b.Network}/{b.PrefixLength}", Block: b, Nexthop: NexthopId(spec.Device, r.VtepIp))))
            .ToDictionary(x => x.Key, x => (x.Block, x.Nexthop));

        var family = spec.LocalVtepIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? (byte)2 : (byte)10;
        var actualNeighbours = rtnl.ListNeighbours(family).Where(n => n.Index == index && (n.State & 0x80) != 0).ToList();
        var actualFdb = rtnl.ListFdb(index).Where(e => e.Destination is not null).ToList();
        var ourNexthopIds = spec.Remotes.Select(r => NexthopId(spec.Device, r.VtepIp)).ToHashSet();
        var actualNexthops = rtnl.ListNexthops(protocol).Where(n => n.OutputIndex == index).ToList();
        // The overlay's routes are the ones through nexthops; endpoint routes in the same table belong to the endpoints.
        var actualRoutes = rtnl.ListRoutes(family, protocol, spec.Table).Where(r => r.NexthopId != 0).ToList();
        var tableSealed = rtnl.ListRoutes(family, protocol, spec.Table).Any(r => r.Type == 7 && r.PrefixLength == 0);
        var ruled = rtnl.ListRules(family, protocol).Any(r => r.InputInterface == spec.Device && r.Table == spec.Table && r.Priority == spec.RulePriority);

        // Removals, routes first.
        var remove = rtnl.Batch();
        foreach (var route in actualRoutes)
        {
            var key = $"{route.Destination}/{route.PrefixLength}";
            if (!wantedRoutes.TryGetValue(key, out var wanted) || wanted.Nexthop != route.NexthopId)
            {
                remove.DeleteRoute(route.Destination, route.PrefixLength, 0, protocol, spec.Table);
            }
        }
        foreach (var nexthop in actualNexthops.Where(n => !wantedNexthops.TryGetValue(n.Id, out var gw) || !gw.Equals(n.Gateway)))
        {
            remove.DeleteNexthop(nexthop.Id);
        }
        foreach (var entry in actualFdb.Where(e => !wantedFdb.TryGetValue(e.Mac, out var dst) || !dst.Equals(e.Destination)))
        {
            remove.DeleteFdb(index, entry.Mac, entry.Destination!);
        }
        foreach (var neighbour in actualNeighbours.Where(n => !wantedNeighbours.TryGetValue(n.Address, out var mac) || !mac.Equals(n.Mac)))
        {
            remove.DeleteNeighbour(index, neighbour.Address);
        }
        changes += remove.Count;
        failures.AddRange(remove.Execute().Where(f => !f.Error.IsNotFound));

        // Additions, routes last.
        var add = rtnl.Batch();
        foreach (var (ip, mac) in wantedNeighbours.Where(w => !actualNeighbours.Any(n => n.Address.Equals(w.Key) && w.Value.Equals(n.Mac))))
        {
            add.ReplaceNeighbour(index, ip, mac);
        }
        foreach (var (mac, underlay) in wantedFdb.Where(w => !actualFdb.Any(e => e.Mac.Equals(w.Key) && w.Value.Equals(e.Destination))))
        {
            add.AppendFdb(index, mac, underlay);
        }
        foreach (var (id, gateway) in wantedNexthops.Where(w => !actualNexthops.Any(n => n.Id == w.Key && w.Value.Equals(n.Gateway))))
        {
            add.AddNexthop(id, gateway, index, protocol);
        }
        foreach (var (key, (block, nexthop)) in wantedRoutes.Where(w => !actualRoutes.Any(r => $"{r.Destination}/{r.PrefixLength}" == w.Key && r.NexthopId == w.Value.Nexthop)))
        {
            add.ReplaceRouteVia(block.Network, block.PrefixLength, nexthop, protocol, spec.Table);
        }
        if (!tableSealed) add.ReplaceUnreachableDefault(family, spec.Table, protocol);
        if (!ruled) add.AddRule(family, spec.Device, spec.Table, spec.RulePriority, protocol);
        changes += add.Count;
        failures.AddRange(add.Execute());
        LastChanges = changes;
        return failures;
    }

    /// <summary>
    /// Removes the overlay's device (its neighbours, FDB entries, nexthops and their routes go with
    /// it), its rule and the unreachable default of its table.
    /// </summary>
    public void Remove(string device, uint table)
    {
        var batch = rtnl.Batch();
        foreach (var rule in rtnl.ListRules(2, protocol).Where(r => r.InputInterface == device))
        {
            batch.DeleteRule(rule.Family, device, rule.Table, rule.Priority, protocol);
        }
        foreach (var route in rtnl.ListRoutes(2, protocol, table).Where(r => r.Type == 7))
        {
            batch.DeleteRoute(route.Destination, route.PrefixLength, 0, protocol, table);
        }
        batch.Execute();
        if (rtnl.FindLink(device) is { } link)
        {
            foreach (var nexthop in rtnl.ListNexthops(protocol).Where(n => n.OutputIndex == link.Index))
            {
                rtnl.Batch().DeleteNexthop(nexthop.Id).Execute();
            }
            rtnl.DeleteLink(link.Index);
        }
    }

    private int EnsureDevice(OverlaySpec spec)
    {
        var link = rtnl.FindLink(spec.Device);
        if (link is not null && link.Kind != "vxlan")
        {
            throw new InvalidOperationException($"{spec.Device} exists and is not a VXLAN device");
        }
        if (link is null)
        {
            rtnl.CreateVxlan(spec.Device, spec.Vni, spec.LocalUnderlay, spec.Port, spec.Mtu, spec.Mac);
            link = rtnl.FindLink(spec.Device)!;
        }
        if (!link.Up || link.Mtu != spec.Mtu || !spec.Mac.Equals(link.Mac))
        {
            rtnl.SetLink(link.Index, up: true, mtu: spec.Mtu, mac: spec.Mac);
        }
        // The VTEP address: it also makes the kernel accept onlink gateways.
        rtnl.AddAddress(link.Index, spec.LocalVtepIp, spec.LocalVtepIp.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128);
        return link.Index;
    }

    /// <summary>A stable nexthop id per (device, VTEP): the same after every restart.</summary>
    public static uint NexthopId(string device, IPAddress vtep)
    {
        var hash = 2166136261u;
        foreach (var c in device) hash = (hash ^ c) * 16777619u;
        foreach (var b in vtep.GetAddressBytes()) hash = (hash ^ b) * 16777619u;
        return (hash & 0x7FFFFFFF) | 1;
    }
}
