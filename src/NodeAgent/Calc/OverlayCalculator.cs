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
/// VTEP address is the network address of its first IPv4 block (as flannel uses its subnet's);
/// every other node holding blocks is a remote VTEP with one route per block. Dual-stack
/// networks get IPv4 overlays only for now.
/// </summary>
public static class OverlayCalculator
{
    public static DesiredState Calculate(ClusterView view, string self, IPAddress underlay, ushort port = 4789)
    {
        var overlays = new List<OverlaySpec>();
        view.Nodes.TryGetValue(self, out var me);
        foreach (var network in view.Networks.Values.OrderBy(n => n.Metadata.Name, StringComparer.Ordinal))
        {
            var blocksByNode = network.Status.Blocks
                .Select(b => (b.Node, Prefix: ParseV4(b.Cidr)))
                .Where(b => b.Prefix is not null)
                .GroupBy(b => b.Node)
                .ToDictionary(g => g.Key, g => g.Select(b => b.Prefix!.Value).OrderBy(p => p.Network.ToString(), StringComparer.Ordinal).ToList());
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
                remotes.Add(new RemoteVtep(blocks[0].Network, PhysicalAddress.Parse(remote.Status.VtepMac.Replace(':', '-').ToUpperInvariant()), remoteUnderlay, blocks));
            }
            overlays.Add(new OverlaySpec(Names.Overlay(network.Spec.Vni), network.Spec.Vni, port, underlay, (int)network.Status.Mtu,
                PhysicalAddress.Parse(me.Status.VtepMac.Replace(':', '-').ToUpperInvariant()), mine[0].Network, remotes,
                Names.Table(network.Spec.Vni), Names.RulePriority));
        }
        var endpoints = view.Endpoints
            .Where(e => e.Value.Spec.Node == self)
            .Select(e => Names.EndpointVeth(e.Key))
            .ToHashSet();
        return new DesiredState(overlays, endpoints);
    }

    private static (IPAddress Network, int PrefixLength)? ParseV4(string cidr)
    {
        var slash = cidr.IndexOf('/');
        return slash > 0 && IPAddress.TryParse(cidr[..slash], out var address) && address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork
            ? (address, int.Parse(cidr[(slash + 1)..], System.Globalization.CultureInfo.InvariantCulture))
            : null;
    }
}
