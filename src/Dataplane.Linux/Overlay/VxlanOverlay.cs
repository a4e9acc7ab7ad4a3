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
/// <item>Isolation: the network's routes live in its own table, with an unreachable route for every
/// network's CIDR and a throw default (anything outside all networks falls through to the main table
/// and leaves through the underlay); a rule sends traffic arriving on the device to that table.</item>
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
        LastChanges = 0;
        // The FDB is per MAC, whatever the family; everything else is done once per family, alike.
        var wantedFdb = spec.Remotes.ToDictionary(r => r.VtepMac, r => r.Underlay);
        var actualFdb = rtnl.ListFdb(index).Where(e => e.Destination is not null).ToList();
        var families = spec.LocalVtepIps.Select(AddressFamilies.Of).Distinct().ToList();

        var remove = rtnl.Batch();
        var plans = families.Select(family => Plan(spec, index, family)).ToList();
        foreach (var plan in plans) plan.Removals(remove);
        foreach (var entry in actualFdb.Where(e => !wantedFdb.TryGetValue(e.Mac, out var dst) || !dst.Equals(e.Destination)))
        {
            remove.DeleteFdb(index, entry.Mac, entry.Destination!);
        }
        foreach (var plan in plans) plan.NeighbourRemovals(remove);
        LastChanges += remove.Count;
        failures.AddRange(remove.Execute().Where(f => !f.Error.IsNotFound));

        var add = rtnl.Batch();
        foreach (var plan in plans) plan.NeighbourAdditions(add);
        foreach (var (mac, underlay) in wantedFdb.Where(w => !actualFdb.Any(e => e.Mac.Equals(w.Key) && w.Value.Equals(e.Destination))))
        {
            add.AppendFdb(index, mac, underlay);
        }
        foreach (var plan in plans) plan.Additions(add);
        LastChanges += add.Count;
        failures.AddRange(add.Execute());
        return failures;
    }

    /// <summary>What one address family of the overlay needs changed, read against the kernel.</summary>
    private FamilyPlan Plan(OverlaySpec spec, int index, byte family)
    {
        var remotes = spec.Remotes
            .Select(r => (Remote: r, Vtep: r.VtepIps.FirstOrDefault(ip => AddressFamilies.Of(ip) == family)))
            .Where(r => r.Vtep is not null)
            .ToList();
        var wantedNeighbours = remotes.ToDictionary(r => r.Vtep!, r => r.Remote.VtepMac);
        var wantedNexthops = remotes.ToDictionary(r => NexthopId(spec.Device, r.Vtep!), r => r.Vtep!);
        var wantedRoutes = remotes
            .SelectMany(r => r.Remote.Blocks.Where(b => AddressFamilies.Of(b.Network) == family)
                .Select(b => (Key: $"{b.Network}/{b.PrefixLength}", Block: b, Nexthop: NexthopId(spec.Device, r.Vtep!))))
            .ToDictionary(x => x.Key, x => (x.Block, x.Nexthop));
        var tableRoutes = rtnl.ListRoutes(family, protocol, spec.Table);
        var rules = rtnl.ListRules(family, protocol);
        return new FamilyPlan
        {
            Family = family, Index = index, Spec = spec, Protocol = protocol,
            WantedNeighbours = wantedNeighbours, WantedNexthops = wantedNexthops, WantedRoutes = wantedRoutes,
            ActualNeighbours = rtnl.ListNeighbours(family).Where(n => n.Index == index && (n.State & 0x80) != 0).ToList(),
            ActualNexthops = rtnl.ListNexthops(protocol).Where(n => n.OutputIndex == index && n.Gateway is { } g && AddressFamilies.Of(g) == family).ToList(),
            // The overlay's routes are the ones through nexthops; endpoint routes in the same table belong to the endpoints.
            ActualRoutes = tableRoutes.Where(r => r.NexthopId != 0).ToList(),
            TableSealed = tableRoutes.Any(r => r.Type == Rtm.RtnThrow && r.PrefixLength == 0),
            WantedIsolated = (spec.Isolated ?? []).Where(p => AddressFamilies.Of(p.Network) == family).Select(p => (p.Network, p.PrefixLength)).ToHashSet(),
            ActualIsolated = tableRoutes.Where(r => r.Type == Rtm.RtnUnreachable).Select(r => (r.Destination, r.PrefixLength)).ToHashSet(),
            Ruled = rules.Any(r => r.InputInterface == spec.Device && r.Table == spec.Table && r.Priority == spec.RulePriority),
            WantedRoutedRules = (spec.Routed ?? []).Where(p => AddressFamilies.Of(p.Network) == family).ToHashSet(),
            ActualRoutedRules = rules.Where(r => r.Table == spec.Table && r.Destination is not null).Select(r => (r.Destination!, r.DestinationLength)).ToHashSet(),
        };
    }

    private sealed class FamilyPlan
    {
        public required byte Family { get; init; }
        public required int Index { get; init; }
        public required OverlaySpec Spec { get; init; }
        public required byte Protocol { get; init; }
        public required Dictionary<IPAddress, PhysicalAddress> WantedNeighbours { get; init; }
        public required Dictionary<uint, IPAddress> WantedNexthops { get; init; }
        public required Dictionary<string, ((IPAddress Network, int PrefixLength) Block, uint Nexthop)> WantedRoutes { get; init; }
        public required List<Neighbour> ActualNeighbours { get; init; }
        public required List<Nexthop> ActualNexthops { get; init; }
        public required List<Route> ActualRoutes { get; init; }
        public required bool TableSealed { get; init; }
        public required HashSet<(IPAddress Network, int PrefixLength)> WantedIsolated { get; init; }
        public required HashSet<(IPAddress Network, int PrefixLength)> ActualIsolated { get; init; }
        public required bool Ruled { get; init; }
        public required HashSet<(IPAddress Network, int PrefixLength)> WantedRoutedRules { get; init; }
        public required HashSet<(IPAddress Network, int PrefixLength)> ActualRoutedRules { get; init; }

        /// <summary>Routes first, then nexthops: nothing ever points at a missing VTEP.</summary>
        public void Removals(RequestBatch batch)
        {
            foreach (var route in ActualRoutes)
            {
                if (!WantedRoutes.TryGetValue($"{route.Destination}/{route.PrefixLength}", out var wanted) || wanted.Nexthop != route.NexthopId)
                {
                    batch.DeleteRoute(route.Destination, route.PrefixLength, 0, Protocol, Spec.Table);
                }
            }
            foreach (var nexthop in ActualNexthops.Where(n => !WantedNexthops.TryGetValue(n.Id, out var gw) || !gw.Equals(n.Gateway)))
            {
                batch.DeleteNexthop(nexthop.Id);
            }
            foreach (var (network, length) in ActualRoutedRules.Where(a => !WantedRoutedRules.Contains(a)))
            {
                batch.DeleteRuleTo(network, length, Spec.Table, Spec.RulePriority + 1, Protocol);
            }
            foreach (var (network, length) in ActualIsolated.Where(a => !WantedIsolated.Contains(a)))
            {
                batch.DeleteTerminalRoute(Rtm.RtnUnreachable, Family, length == 0 ? null : network, length, Spec.Table, Protocol);
            }
        }

        public void NeighbourRemovals(RequestBatch batch)
        {
            foreach (var neighbour in ActualNeighbours.Where(n => !WantedNeighbours.TryGetValue(n.Address, out var mac) || !mac.Equals(n.Mac)))
            {
                batch.DeleteNeighbour(Index, neighbour.Address);
            }
        }

        public void NeighbourAdditions(RequestBatch batch)
        {
            foreach (var (ip, mac) in WantedNeighbours.Where(w => !ActualNeighbours.Any(n => n.Address.Equals(w.Key) && w.Value.Equals(n.Mac))))
            {
                batch.ReplaceNeighbour(Index, ip, mac);
            }
        }

        /// <summary>Nexthops, then routes, then the table's seal and the rule into it.</summary>
        public void Additions(RequestBatch batch)
        {
            foreach (var (id, gateway) in WantedNexthops.Where(w => !ActualNexthops.Any(n => n.Id == w.Key && w.Value.Equals(n.Gateway))))
            {
                batch.AddNexthop(id, gateway, Index, Protocol);
            }
            foreach (var (key, (block, nexthop)) in WantedRoutes.Where(w => !ActualRoutes.Any(r => $"{r.Destination}/{r.PrefixLength}" == w.Key && r.NexthopId == w.Value.Nexthop)))
            {
                batch.ReplaceRouteVia(block.Network, block.PrefixLength, nexthop, Protocol, Spec.Table);
            }
            foreach (var (network, length) in WantedIsolated.Where(w => !ActualIsolated.Contains(w)))
            {
                batch.ReplaceTerminalRoute(Rtm.RtnUnreachable, Family, network, length, Spec.Table, Protocol);
            }
            if (!TableSealed) batch.ReplaceTerminalRoute(Rtm.RtnThrow, Family, null, 0, Spec.Table, Protocol);
            if (!Ruled) batch.AddRule(Family, Spec.Device, Spec.Table, Spec.RulePriority, Protocol);
            foreach (var (network, length) in WantedRoutedRules.Where(w => !ActualRoutedRules.Contains(w)))
            {
                batch.AddRuleTo(network, length, Spec.Table, Spec.RulePriority + 1, Protocol);
            }
        }
    }

    /// <summary>
    /// Removes the overlay's device (its neighbours, FDB entries, nexthops and their routes go with
    /// it), its rule and the unreachable and throw routes of its table.
    /// </summary>
    public void Remove(string device, uint table)
    {
        var batch = rtnl.Batch();
        foreach (var family in AddressFamilies.Both)
        {
            foreach (var rule in rtnl.ListRules(family, protocol).Where(r => r.InputInterface == device))
            {
                batch.DeleteRule(rule.Family, device, rule.Table, rule.Priority, protocol);
            }
            foreach (var rule in rtnl.ListRules(family, protocol).Where(r => r.Table == table && r.Destination is not null))
            {
                batch.DeleteRuleTo(rule.Destination!, rule.DestinationLength, table, rule.Priority, protocol);
            }
            foreach (var route in rtnl.ListRoutes(family, protocol, table).Where(r => r.Type is Rtm.RtnUnreachable or Rtm.RtnThrow))
            {
                batch.DeleteTerminalRoute(route.Type, family, route.PrefixLength == 0 ? null : route.Destination, route.PrefixLength, table, protocol);
            }
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
        // The VTEP addresses: they also make the kernel accept onlink gateways.
        foreach (var vtep in spec.LocalVtepIps)
        {
            rtnl.AddAddress(link.Index, vtep, AddressFamilies.HostBits(vtep));
        }
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
