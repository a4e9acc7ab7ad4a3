using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

[Alias("controlplane.INodeGrain")]
public interface INodeGrain : IResourceGrain<Node>
{
    /// <summary>
    /// Renews the node's lease (in memory); a not-ready node becomes ready again, and the agent's
    /// status, when given and different, is stored.
    /// </summary>
    [Alias("Heartbeat")]
    Task<bool> HeartbeatAsync(AgentStatus? agent);

    /// <summary>Marks the node not ready if its lease has expired. Returns its readiness.</summary>
    [Alias("CheckLease")]
    Task<bool> CheckLeaseAsync();
}
