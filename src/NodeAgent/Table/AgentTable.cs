using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Policy;
using ControlPlane.NodeAgent.Services;

namespace ControlPlane.NodeAgent.Table;

/// <summary>
/// The one nftables table the agent owns ("inet controlplane"): the service part
/// (<see cref="ServiceRuleset"/>) and the network-policy part (<see cref="PolicyRuleset"/>).
/// Both are static chains over named sets; what changes is elements.
/// </summary>
public static class AgentTable
{
    public const string Name = "controlplane";

    public static readonly NftSchema Schema = Build();

    private static NftSchema Build()
    {
        var (serviceSets, serviceChains) = ServiceRuleset.Schema();
        var (policySets, policyChains) = PolicyRuleset.Schema();
        return new NftSchema([.. serviceSets, .. policySets], [.. serviceChains, .. policyChains]);
    }

    /// <summary>A chain created on demand for data (see <see cref="ServiceRuleset.DataChain"/>).</summary>
    public static NftChainSpec DataChain(string name) => ServiceRuleset.DataChain(name);
}
