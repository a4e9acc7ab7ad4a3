using ControlPlane.Contracts.V1;

namespace ControlPlane.NodeAgent.Sync;

/// <summary>The agent's copy of what it watches: networks, nodes, endpoints and peer clusters, by key.</summary>
public sealed record ClusterView(
    IReadOnlyDictionary<string, Network> Networks,
    IReadOnlyDictionary<string, Node> Nodes,
    IReadOnlyDictionary<string, Endpoint> Endpoints,
    IReadOnlyDictionary<string, ClusterPeer>? Peers = null);
