using System.Net;
using System.Net.NetworkInformation;

namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>A network device as the kernel reports it.</summary>
/// <param name="PeerIndex">IFLA_LINK: for a veth, its far end's index (in <paramref name="PeerNamespace"/> when that is set); 0 when there is none.</param>
/// <param name="PeerNamespace">IFLA_LINK_NETNSID: the id, in the namespace the link was read from, of the namespace its far end is in; null when that is the same namespace.</param>
public sealed record Link(int Index, string Name, string? Kind, int Mtu, bool Up, PhysicalAddress? Mac, int PeerIndex = 0, int? PeerNamespace = null);

/// <summary>An address of a link, with its prefix length.</summary>
public sealed record LinkAddress(int Index, IPAddress Address, int PrefixLength);

/// <summary>A route; <see cref="Gateway"/> is null for directly connected destinations.</summary>
public sealed record Route(IPAddress Destination, int PrefixLength, IPAddress? Gateway, int OutputIndex, byte Protocol, uint Table, bool Onlink, uint NexthopId = 0, byte Type = 1)
{
    /// <summary>An ordinary route that forwards (not unreachable, prohibit, throw, …).</summary>
    public bool Unicast => Type == Rtm.RtnUnicast;
}

/// <summary>A neighbour (ARP/NDP) entry.</summary>
public sealed record Neighbour(int Index, IPAddress Address, PhysicalAddress? Mac, ushort State);

/// <summary>A forwarding-database entry of a VXLAN or bridge device: MAC → remote underlay address.</summary>
public sealed record FdbEntry(int Index, PhysicalAddress Mac, IPAddress? Destination, ushort State);

/// <summary>A nexthop object.</summary>
public sealed record Nexthop(uint Id, IPAddress? Gateway, int OutputIndex, byte Protocol);

/// <summary>A policy-routing rule: traffic arriving on <see cref="InputInterface"/> looks up <see cref="Table"/>.</summary>
public sealed record Rule(string? InputInterface, uint Table, uint Priority, byte Protocol, byte Family, IPAddress? Destination = null, int DestinationLength = 0);
