using System.Net;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Grains.State;
using ControlPlane.Storage;
using ControlPlane.Storage.Errors;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// A node: its underlay address (canonical, unicast, and claimed in the store, so no two nodes
/// share one; an update that changes it moves the claim in the same commit), its VTEP MAC
/// (derived from the name, so every restart reproduces it) and its liveness lease. Renewals stay
/// in memory, since a lease is about this moment; only readiness changes are written. After a
/// silo restart every node gets one full lease period of grace.
/// </summary>
[GrainType(Kinds.Node)]
internal sealed class NodeGrain(ObjectServices services, ClusterSet.ClusterSetOptions clusterSet) : ResourceGrain<Node>(services), INodeGrain
{
    private DateTimeOffset _leaseExpires;

    protected override bool Namespaced => false;

    protected override ObjectMeta MetaOf(Node resource) => resource.Metadata ??= new ObjectMeta();

    protected override void ValidateName(string name) => Validation.Names.RequireSubdomain("metadata.name", name);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Renew();
        return base.OnActivateAsync(cancellationToken);
    }

    protected override void Validate(Node resource)
    {
        var spec = resource.Spec ?? throw ControlPlaneException.Invalid("spec", "is required");
        var address = AddressRules.UnderlayAddress(spec.UnderlayIp, out var problem) ?? throw ControlPlaneException.Invalid("spec.underlay_ip", problem!);
        spec.UnderlayIp = address.ToString();
    }

    protected override Task<Reservation> PrepareCreateAsync(Node resource)
    {
        Renew();
        resource.Status = new NodeStatus
        {
            VtepMac = VtepMac(resource.Metadata.Name),
            Ready = true,
            ReadyChangeTime = Timestamp.FromDateTimeOffset(Time.GetUtcNow()),
        };
        return Task.FromResult(new Reservation(UnderlayClaim(resource)));
    }

    /// <summary>
    /// From the node's name, and its cluster's id unless that is the default: the nodes of peer
    /// clusters share overlays, where two VTEPs with one MAC would take each other's FDB entry.
    /// </summary>
    private string VtepMac(string name) => MacAddresses.Derive(clusterSet.ClusterId == new ClusterSet.ClusterSetOptions().ClusterId
        ? "vtep/" + name
        : $"vtep/{clusterSet.ClusterId}/{name}");

    protected override IReadOnlyList<Claim> ClaimsAfterUpdate(Node updated) => UnderlayClaim(updated);

    protected override ControlPlaneException ClaimRefused(ClaimTakenException refused) =>
        new(ErrorCode.AlreadyExists, $"{Claims.AddressOf(refused.Holder.Claim)} is the underlay address of node '{refused.Holder.Key}'", "spec.underlay_ip");

    private static Claim[] UnderlayClaim(Node node) => [Claims.Underlay(IPAddress.Parse(node.Spec.UnderlayIp))];

    protected override Node Merge(Node current, Node requested)
    {
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        current.Spec = requested.Spec;
        return current;
    }

    public async Task<bool> HeartbeatAsync(AgentStatus? agent)
    {
        var node = RequireState();
        Renew();
        // The first status an agent sends is stored even when empty: a node whose status.agent is
        // set has (had) an agent, which the convergence tracker needs to know after a restart.
        var agentChanged = agent is not null && !agent.Equals(node.Status.Agent);
        if (node.Status.Ready && !agentChanged) return true;
        var updated = node.Clone();
        if (!node.Status.Ready) SetReady(updated, true);
        if (agentChanged) updated.Status.Agent = agent;
        await CommitAsync(updated);
        if (!node.Status.Ready) ReadinessChanged();
        return true;
    }

    public async Task<bool> CheckLeaseAsync()
    {
        var node = RequireState();
        if (node.Status.Ready && Time.GetUtcNow() > _leaseExpires)
        {
            await SetReadyAsync(false);
        }
        return State!.Status.Ready;
    }

    private async Task SetReadyAsync(bool ready)
    {
        var updated = State!.Clone();
        SetReady(updated, ready);
        await CommitAsync(updated);
        ReadinessChanged();
    }

    /// <summary>Tells the convergence tracker at once (it also reads readiness back every few seconds).</summary>
    private void ReadinessChanged() => GrainFactory.Get<Convergence.IConvergenceGrain>(Convergence.IConvergenceGrain.Key).NodeChangedAsync(Key).Ignore();

    private void SetReady(Node node, bool ready)
    {
        node.Status.Ready = ready;
        node.Status.ReadyChangeTime = Timestamp.FromDateTimeOffset(Time.GetUtcNow());
    }

    protected override ControlPlaneException StillReferenced(string kind, string key) =>
        new(ErrorCode.FailedPrecondition, $"node '{Key}' still hosts endpoint '{key}'; delete its endpoints first");

    /// <summary>
    /// A node that still hosts endpoints stays: deleting it would leave them ready (and in DNS and
    /// service endpoints) on a node nobody runs, and keep their addresses in its blocks.
    /// </summary>
    protected override async Task CheckDeleteAsync(Node current)
    {
        if (await FirstReferrerAsync(Kinds.Endpoint, Endpoint.Parser, e => e.Spec?.Node == Key) is { } endpoint)
        {
            throw StillReferenced(Kinds.Endpoint, endpoint);
        }
    }

    /// <summary>The node's address blocks go back to each network, for other nodes to take.</summary>
    protected override async Task AfterDeleteAsync(Node deleted)
    {
        var networks = await Store.ListAsync([Kinds.Network], null, null, int.MaxValue);
        await Task.WhenAll(networks.Objects.Select(n => GrainFactory.Get<INetworkGrain>(n.Key).ReleaseBlocksAsync(Key)));
    }

    private void Renew() => _leaseExpires = Time.GetUtcNow() + Services.Options.NodeLeaseDuration;
}
