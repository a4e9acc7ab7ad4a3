using System.Net;
using System.Net.NetworkInformation;

namespace ControlPlane.Dataplane.Linux.Overlay;

/// <summary>A remote node as one overlay sees it: where its VTEP is and which address blocks live behind it.</summary>
/// <param name="VtepIps">The overlay addresses that stand for the node, one per address family (neighbour entries map them to <paramref name="VtepMac"/>).</param>
/// <param name="Underlay">Where its VXLAN packets go (the FDB entry).</param>
/// <param name="Blocks">Address blocks routed to it, of either family.</param>
public sealed record RemoteVtep(IReadOnlyList<IPAddress> VtepIps, PhysicalAddress VtepMac, IPAddress Underlay, IReadOnlyList<(IPAddress Network, int PrefixLength)> Blocks);

/// <summary>Everything one network needs on this node: its VXLAN device and the remote nodes.</summary>
/// <param name="Table">The network's own routing table: its routes live there, and traffic arriving
/// on its device (and on its endpoints' interfaces) looks it up, so networks never reach each other.</param>
/// <param name="RulePriority">Priority of the rules that select <paramref name="Table"/>.</param>
/// <param name="LocalVtepIps">This node's VTEP addresses, one per address family the network has.</param>
/// <param name="Isolated">Prefixes the network must never reach (every network's CIDR, its own included: its
/// own addresses are reached through more specific routes). Anything else falls through to the node's main table,
/// so traffic to addresses outside all networks leaves through the underlay.</param>
/// <param name="Routed">The network's own CIDRs: traffic to them from anywhere else (replies from outside,
/// the node itself) looks up <paramref name="Table"/>, through a rule just after the interface rules.</param>
public sealed record OverlaySpec(string Device, uint Vni, ushort Port, IPAddress LocalUnderlay, int Mtu, PhysicalAddress Mac,
    IReadOnlyList<IPAddress> LocalVtepIps, IReadOnlyList<RemoteVtep> Remotes, uint Table, uint RulePriority,
    IReadOnlyList<(IPAddress Network, int PrefixLength)>? Isolated = null,
    IReadOnlyList<(IPAddress Network, int PrefixLength)>? Routed = null);
