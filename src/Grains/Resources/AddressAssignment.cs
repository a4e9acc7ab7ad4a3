namespace ControlPlane.Grains.Resources;

/// <summary>What a network hands an endpoint: its addresses and how to reach the rest of the network.</summary>
[GenerateSerializer, Immutable]
[Alias("controlplane.AddressAssignment")]
public sealed record AddressAssignment(
    [property: Id(0)] string[] Ips,
    [property: Id(1)] string Ipv4Gateway,
    [property: Id(2)] string Ipv6Gateway,
    [property: Id(3)] uint Mtu);
