using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

public interface INodeGrain : IResourceGrain<Node>
{
    /// <summary>
    /// Renews the node's lease (in memory); a not-ready node becomes ready again, and the agent's
    /// status, when given and different, is stored.
    /// </summary>
    Task<bool> HeartbeatAsync(AgentStatus? agent = null);

    /// <summary>Whether the node is registered and ready; NOT_FOUND if it is not registered.</summary>
    [ControlPlane.Runtime.Grains.ReadOnly]
    Task<bool> IsReadyAsync();

    /// <summary>Marks the node not ready if its lease has expired. Returns its readiness.</summary>
    Task<bool> CheckLeaseAsync();
}
