using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

[Alias("controlplane.INetworkGrain")]
public interface INetworkGrain : IResourceGrain<Network>
{
    /// <summary>
    /// Takes an address of each of the network's families for <paramref name="holder"/> from the
    /// node's blocks (assigning the node a new block, durably, when its blocks are full).
    /// FAILED_PRECONDITION if the network does not exist, RESOURCE_EXHAUSTED if no address is
    /// left. The holder's commit makes the addresses durable (the store refuses a second holder).
    /// </summary>
    /// <remarks>
    /// <paramref name="requested"/> names addresses the holder asks for (at most one per family,
    /// reported as spec.ips[i]): INVALID_ARGUMENT outside the network or reserved,
    /// ALREADY_EXISTS when held (naming the holder), FAILED_PRECONDITION in another node's block.
    /// </remarks>
    [Alias("Allocate")]
    Task<AddressAssignment> AllocateAsync(string node, string holder, string[] requested);

    /// <summary>Gives back addresses, but only those <paramref name="holder"/> still holds here.</summary>
    [Alias("Release")]
    Task ReleaseAsync(string holder, string[] ips);

    /// <summary>
    /// Takes back the blocks assigned to <paramref name="node"/> that hold no address (after the
    /// node was deleted), so that other nodes can be given them.
    /// </summary>
    [Alias("ReleaseBlocks")]
    Task ReleaseBlocksAsync(string node);

    /// <summary>Forgets what is held and rebuilds it from the store on the next call (after the store refused a claim).</summary>
    [Alias("Resync")]
    Task ResyncAsync();
}
