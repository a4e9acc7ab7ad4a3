namespace ControlPlane.Silo.Security;

/// <summary>What a gRPC method needs of its caller.</summary>
public enum Permission
{
    /// <summary>Reads: Get, List, Watch, Explain, convergence status and waits, health, reflection. Every role.</summary>
    Read,
    /// <summary>Writes to namespaced objects (endpoints, services, network policies): admin and orchestrator.</summary>
    NamespacedWrite,
    /// <summary>Writes to cluster-scoped objects (namespaces, networks, deleting nodes): admin only.</summary>
    ClusterWrite,
    /// <summary>Registering, updating, heartbeating and reporting a node: admin, and an agent for its own node.</summary>
    OwnNode,
    /// <summary>Creating, updating or deleting an endpoint: admin, orchestrator, and an agent for an endpoint on its own node.</summary>
    EndpointOnOwnNode,
}
