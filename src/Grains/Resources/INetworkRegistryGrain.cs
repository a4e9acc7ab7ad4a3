using ControlPlane.Runtime.Grains;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// Cluster-wide claims of networks: VNIs and address ranges never overlap. Its state is derived
/// from the stored networks on activation; a claim becomes durable with the network's commit.
/// </summary>
public interface INetworkRegistryGrain : IGrain
{
    /// <summary>Claims the VNI and CIDRs for a network, or fails FAILED_PRECONDITION naming the conflict.</summary>
    Task ClaimAsync(string network, uint vni, string ipv4Cidr, string ipv6Cidr);

    Task ReleaseAsync(string network);
}
