namespace ControlPlane.Grains.Resources;

/// <summary>What a network hands an endpoint: its addresses and how to reach the rest of the network.</summary>
public sealed record AddressAssignment(string[] Ips, string Ipv4Gateway, string Ipv6Gateway, uint Mtu);
