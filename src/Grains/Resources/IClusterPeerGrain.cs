using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

/// <summary>A peer cluster of the ClusterSet (key: its cluster id).</summary>
[Alias("controlplane.IClusterPeerGrain")]
public interface IClusterPeerGrain : IResourceGrain<ClusterPeer>
{
    /// <summary>
    /// Records what the peer said of itself (the ClusterSet controller calls this whenever its
    /// identity, networks or nodes change): its ranges are claimed, its networks and nodes stored
    /// for the node agents. Returns whether the peer is joined (false: refused, or deleted).
    /// </summary>
    [Alias("Observe")]
    Task<bool> ObserveAsync(ClusterInfo info, ClusterPeerStatus observed);
}
