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
        return new NftSchema([.. serviceSets, .. policySets], [.. serviceChains, .. policyChains],
            [DataChain(ServiceRuleset.BalancerChain(1)), DataChain(ServiceRuleset.AffinityChain(1)),
             DataChain(PolicyRuleset.Chain(FamilyLayout.V4, Contracts.Policy.PolicyDirection.Ingress, 0)),
             DataChain(PolicyRuleset.Chain(FamilyLayout.V6, Contracts.Policy.PolicyDirection.Egress, 0))]);
    }

    /// <summary>
    /// A chain created when data first needs it, with the sets it brings: a service balancing or
    /// affinity chain (<see cref="ServiceRuleset.DataChain"/>) or a policy shard (<see cref="PolicyRuleset.ShardChain"/>).
    /// </summary>
    public static NftChainSpec DataChain(string name) => PolicyRuleset.IsShardChain(name) ? PolicyRuleset.ShardChain(name) : ServiceRuleset.DataChain(name);
}
