using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.ClusterSet;

/// <summary>What a peer says of itself: its identity and ranges, and its networks and nodes.</summary>
/// <param name="Observed">The peer's networks and nodes (status.networks and status.nodes of its ClusterPeer here).</param>
public sealed record PeerView(ClusterInfo Info, ClusterPeerStatus Observed)
{
    /// <summary>What of a peer's network this cluster keeps: what its agents need to reach the peer's endpoints.</summary>
    public static RemoteNetwork Remote(Network network)
    {
        var remote = new RemoteNetwork { Name = network.Metadata.Name, Vni = network.Spec.Vni, Ipv4Cidr = network.Spec.Ipv4Cidr, Ipv6Cidr = network.Spec.Ipv6Cidr };
        if (network.Status is not null) remote.Blocks.Add(network.Status.Blocks);
        return remote;
    }

    public static RemoteNode Remote(Node node) => new()
    {
        Name = node.Metadata.Name,
        UnderlayIp = node.Spec.UnderlayIp,
        VtepMac = node.Status?.VtepMac ?? string.Empty,
        Ready = node.Status?.Ready ?? false,
    };
}

/// <summary>Reads a peer over its API (implemented by the silo, which holds the gRPC clients).</summary>
public interface IPeerProbe
{
    /// <summary>
    /// The peer's view, or null with the reason when none of its addresses answered as a control
    /// plane within the timeout (unreachable, too slow, or something else answering there).
    /// </summary>
    Task<(PeerView? View, string? Problem)> ReadAsync(IReadOnlyList<string> addresses, TimeSpan timeout);

    /// <summary>What each address, asked on its own, says it is: null for one that did not answer within the timeout.</summary>
    Task<ClusterInfo?[]> IdentifyEachAsync(IReadOnlyList<string> addresses, TimeSpan timeout);
}
