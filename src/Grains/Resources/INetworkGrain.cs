using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

public interface INetworkGrain : IResourceGrain<Network>
{
    /// <summary>
    /// Takes an address of each of the network's families from the node's blocks (assigning the
    /// node a new block, durably, when its blocks are full). NOT_FOUND if the network does not
    /// exist, RESOURCE_EXHAUSTED if no address is left. The addresses count as held until
    /// released; after a restart, held means "recorded in a stored endpoint".
    /// </summary>
    Task<AddressAssignment> AllocateAsync(string node);

    Task ReleaseAsync(IReadOnlyList<string> ips);
}
