using System.Net;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Policy;

/// <summary>
/// The addresses a node holds on a network's overlay: its VTEP address per family — the first
/// address of the first block of that family the network handed it (blocks in assignment order) —
/// and the network's anycast gateways, which every node holds. Traffic between an endpoint and
/// these addresses is its own node's, which network policy does not filter. The agent programs
/// them; Explain reads them the same way.
/// </summary>
public static class NodeAddresses
{
    /// <summary>The VTEP addresses of a node whose blocks' network addresses are <paramref name="blocksInOrder"/>.</summary>
    public static List<IPAddress> Vteps(IEnumerable<IPAddress> blocksInOrder) =>
        [.. blocksInOrder.GroupBy(b => b.AddressFamily).Select(g => g.First())];

    /// <summary>The VTEP and gateway addresses <paramref name="node"/> holds on <paramref name="network"/>.</summary>
    public static List<IPAddress> OnNetwork(Network network, string node)
    {
        var blocks = network.Status?.Blocks.Where(b => b.Node == node).Select(b => b.Cidr.Split('/')[0])
            .Select(a => IPAddress.TryParse(a, out var address) ? address : null).OfType<IPAddress>() ?? [];
        var gateways = new[] { network.Status?.Ipv4Gateway, network.Status?.Ipv6Gateway }
            .Select(g => IPAddress.TryParse(g, out var address) ? address : null).OfType<IPAddress>();
        return [.. Vteps(blocks), .. gateways];
    }
}
