using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Overlay;
using ControlPlane.NodeAgent.Dataplane;
using ControlPlane.NodeAgent.Sync;

namespace ControlPlane.NodeAgent.Calc;

/// <summary>
/// Pure: the desired kernel state of one node from the cluster view, with no I/O and no memory
/// of earlier results. A node takes part in a network's overlay once it holds a block of it. Its
/// VTEP address in each family is the first address of its first block of that family (IPAM
/// never hands those out); every other node holding blocks is a remote VTEP with one route per
/// block. IPv4 and IPv6 take the same path.
/// </summary>
public static class OverlayCalculator
{
    public static DesiredState Calculate(ClusterView view, string self, IPAddress underlay, ushort port = 4789)
    {
        var overlays = new List<OverlaySpec>();
        view.Nodes.TryGetValue(self, out var me);
        // Every network's CIDR is unreachable from every network's table (own addresses have more specific routes).
        var peers = view.Peers?.Values.OrderBy(p => p.Metadata.Name, StringComparer.Ordinal).ToList() ?? [];
        var isolated = view.Networks.Values
            .SelectMany(n => new[] { n.Spec.Ipv4Cidr, n.Spec.Ipv6Cidr })
            .Concat(peers.SelectMany(p => p.Status?.Networks ?? []).SelectMany(n => new[] { n.Ipv4Cidr, n.Ipv6Cidr }))
            .Select(c => string.IsNullOrEmpty(c) ? null : Parse(c))
            .Where(p => p is not null)
            .Select(p => p!.Value)
            .Distinct()
            .ToList();
        foreach (var network in view.Networks.Values.OrderBy(n => n.Metadata.Name, StringComparer.Ordinal))
        {
            // Blocks in assignment order: a node's first block of a family gives its VTEP address.
            var blocksByNode = BlocksByNode(network.Status.Blocks);
            if (me is null || !blocksByNode.TryGetValue(self, out var mine))
            {
                continue;
            }
            var remotes = new List<RemoteVtep>();
            foreach (var (node, blocks) in blocksByNode.OrderBy(n => n.Key, StringComparer.Ordinal))
            {
                if (node == self || !view.Nodes.TryGetValue(node, out var remote) || !IPAddress.TryParse(remote.Spec.UnderlayIp, out var remoteUnderlay))
                {
                    continue;
                }
                remotes.Add(new RemoteVtep(VtepAddresses(blocks), PhysicalAddress.Parse(remote.Status.VtepMac), remoteUnderlay, blocks));
            }
            // The same network in peer clusters (same name and VNI): their nodes are remote VTEPs too,
            // so this network's endpoints reach theirs across the overlay.
            var cidrs = new List<string> { network.Spec.Ipv4Cidr, network.Spec.Ipv6Cidr };
            foreach (var peer in peers)
            {
                var remoteNodes = peer.Status?.Nodes.ToDictionary(n => n.Name) ?? [];
                foreach (var shared in peer.Status?.Networks.Where(n => n.Name == network.Metadata.Name && n.Vni == network.Spec.Vni) ?? [])
                {
                    cidrs.Add(shared.Ipv4Cidr);
                    cidrs.Add(shared.Ipv6Cidr);
                    foreach (var (node, blocks) in BlocksByNode(shared.Blocks).OrderBy(n => n.Key, StringComparer.Ordinal))
                    {
                        if (remoteNodes.TryGetValue(node, out var remote) && IPAddress.TryParse(remote.UnderlayIp, out var remoteUnderlay)
                            && PhysicalAddress.TryParse(remote.VtepMac, out var mac))
                        {
                            remotes.Add(new RemoteVtep(VtepAddresses(blocks), mac, remoteUnderlay, blocks));
                        }
                    }
                }
            }
            overlays.Add(new OverlaySpec(Names.Overlay(network.Spec.Vni), network.Spec.Vni, port, underlay, (int)network.Status.Mtu,
                PhysicalAddress.Parse(me.Status.VtepMac), VtepAddresses(mine), remotes,
                Names.Table(network.Spec.Vni), Names.RulePriority, isolated,
                cidrs.Where(c => !string.IsNullOrEmpty(c)).Select(Parse).Where(p => p is not null).Select(p => p!.Value).ToList()));
        }
        var local = view.Endpoints.Where(e => e.Value.Spec.Node == self).ToList();
        var endpoints = local.Select(e => Names.EndpointVeth(e.Key)).ToHashSet();
        // The host end of each local endpoint as its attach wired it (its network's table, gateways, MAC).
        var hosts = new List<EndpointWiring.HostSide>();
        foreach (var (key, endpoint) in local)
        {
            if (!view.Networks.TryGetValue(endpoint.Spec.Network, out var network) || endpoint.Status is not { } status
                || !PhysicalAddress.TryParse(status.Mac, out _) || status.Ips.Count == 0) continue;
            hosts.Add(EndpointWiring.HostSide.Of(key, status, Names.Table(network.Spec.Vni)));
        }
        return new DesiredState(overlays, endpoints) { Hosts = hosts };
    }

    /// <summary>Blocks by node, in assignment order.</summary>
    private static Dictionary<string, List<(IPAddress Network, int PrefixLength)>> BlocksByNode(IEnumerable<AddressBlock> blocks) => blocks
        .Select(b => (b.Node, Prefix: Parse(b.Cidr)))
        .Where(b => b.Prefix is not null)
        .GroupBy(b => b.Node)
        .ToDictionary(g => g.Key, g => g.Select(b => b.Prefix!.Value).ToList());

    /// <summary>The first block of each family stands for the node.</summary>
    private static List<IPAddress> VtepAddresses(List<(IPAddress Network, int PrefixLength)> blocks) =>
        Contracts.Policy.NodeAddresses.Vteps(blocks.Select(b => b.Network));

    private static (IPAddress Network, int PrefixLength)? Parse(string cidr)
    {
        var slash = cidr.IndexOf('/');
        return slash > 0 && IPAddress.TryParse(cidr[..slash], out var address)
            ? (address, int.Parse(cidr[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture))
            : null;
    }
}
