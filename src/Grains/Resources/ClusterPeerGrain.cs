using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.ClusterSet;
using ControlPlane.Grains.State;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// A peer of the ClusterSet. Creating one reads the peer (within
/// <see cref="ClusterSetOptions.PeerProbeTimeout"/>): a peer that is another cluster, of another
/// set, or whose ranges overlap this cluster's is refused with FAILED_PRECONDITION naming both
/// ranges; an unreachable one is stored and joins when it answers. A joined peer's network and
/// service ranges are claimed in the store, in the scope of network ranges, so no local network
/// (and no other peer) can take an overlapping one afterwards.
/// </summary>
[GrainType(Kinds.ClusterPeer)]
internal sealed class ClusterPeerGrain(ObjectServices services, ClusterSetOptions clusterSet, IPeerProbe probe)
    : ResourceGrain<ClusterPeer>(services), IClusterPeerGrain
{
    // The ranges of the write in progress, to name ours when the store refuses one.
    private IReadOnlyList<PeerRange> _ranges = [];

    protected override bool Namespaced => false;

    protected override ObjectMeta MetaOf(ClusterPeer resource) => resource.Metadata ??= new ObjectMeta();

    protected override void ValidateName(string name)
    {
        Validation.Names.RequireLabel("metadata.name", name);
        if (name == clusterSet.ClusterId)
        {
            throw ControlPlaneException.Invalid("metadata.name", $"'{name}' is this cluster's own id (ClusterSet:ClusterId); a peer is named by its cluster id");
        }
    }

    protected override void Validate(ClusterPeer resource)
    {
        var spec = resource.Spec ?? throw ControlPlaneException.Invalid("spec", "is required");
        if (spec.Addresses.Count == 0) throw ControlPlaneException.Invalid("spec.addresses", "names no silo address");
        if (spec.Addresses.Count > 16) throw ControlPlaneException.Invalid("spec.addresses", "names more than 16 addresses");
        for (var i = 0; i < spec.Addresses.Count; i++)
        {
            if (ControlPlaneChannel.PeerAddressProblem(spec.Addresses[i]) is { } problem)
            {
                throw ControlPlaneException.Invalid($"spec.addresses[{i}]", $"{ControlPlaneException.Quote(spec.Addresses[i])} {problem}");
            }
            if (spec.Addresses.IndexOf(spec.Addresses[i]) != i)
            {
                throw ControlPlaneException.Invalid($"spec.addresses[{i}]", $"{ControlPlaneException.Quote(spec.Addresses[i])} is listed twice");
            }
        }
    }

    protected override async Task<Reservation> PrepareCreateAsync(ClusterPeer resource)
    {
        resource.Status = new ClusterPeerStatus();
        _ranges = [];
        var (view, problem) = await probe.ReadAsync([.. resource.Spec.Addresses], clusterSet.PeerProbeTimeout);
        var now = Time.GetUtcNow();
        if (view is null)
        {
            Conditions.Set(resource.Status.Conditions, Conditions.Of(PeerJudge.Joined, Conditions.Unknown, "Unreachable",
                $"{problem}; the peer joins when its silos answer"), now);
            return Reservation.None;
        }
        var ranges = Judged(resource.Metadata.Name, view);
        await CheckEachAddressAsync(resource.Metadata.Name, resource.Spec);
        Fill(resource.Status, view.Observed, ranges);
        Conditions.Set(resource.Status.Conditions, Conditions.Of(PeerJudge.Joined, Conditions.True, "Joined", string.Empty), now);
        _ranges = ranges;
        return new Reservation([.. ranges.Select(PeerJudge.ClaimOf)]);
    }

    /// <summary>The peer's ranges, or FAILED_PRECONDITION when it may not join.</summary>
    private IReadOnlyList<PeerRange> Judged(string name, PeerView view)
    {
        var (ranges, reason, message) = PeerJudge.Judge(name, view.Info, view.Observed, clusterSet, Services.Options);
        return reason is null ? ranges
            : throw new ControlPlaneException(ErrorCode.FailedPrecondition, $"cluster '{name}' cannot join: {message}", "spec.addresses");
    }

    /// <summary>New addresses are read like a new peer's: ones that answer as another cluster (or overlap) are refused.</summary>
    protected override async Task CheckUpdateAsync(ClusterPeer current, ClusterPeer updated)
    {
        if (updated.Spec.Addresses.SequenceEqual(current.Spec.Addresses))
        {
            return;
        }
        var (view, _) = await probe.ReadAsync([.. updated.Spec.Addresses], clusterSet.PeerProbeTimeout);
        if (view is not null)
        {
            Judged(Key, view);
        }
        await CheckEachAddressAsync(Key, updated.Spec);
    }

    /// <summary>
    /// The peer is read through whichever of its addresses answers, so each must reach that
    /// cluster: one that answers as another would, once the others fail, make the peer look like
    /// that cluster (and be refused, its imports withdrawn). That includes another cluster given
    /// the same id by mistake, told apart by its store. Addresses that do not answer now pass.
    /// </summary>
    private async Task CheckEachAddressAsync(string name, ClusterPeerSpec spec)
    {
        if (spec.Addresses.Count < 2) return;
        var identities = await probe.IdentifyEachAsync([.. spec.Addresses], clusterSet.PeerProbeTimeout);
        var first = -1;
        for (var i = 0; i < identities.Length; i++)
        {
            if (identities[i] is not { } info) continue;
            if (info.ClusterId != name || info.ClusterSet != clusterSet.Name)
            {
                throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                    $"cluster '{name}' cannot join: spec.addresses[{i}] ({ControlPlaneException.Quote(spec.Addresses[i])}) answers as cluster '{info.ClusterId}' of ClusterSet '{info.ClusterSet}'; every address must reach cluster '{name}'",
                    $"spec.addresses[{i}]");
            }
            if (first < 0)
            {
                first = i;
            }
            else if (info.StoreId != identities[first]!.StoreId)
            {
                throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                    $"cluster '{name}' cannot join: spec.addresses[{i}] ({ControlPlaneException.Quote(spec.Addresses[i])}) and spec.addresses[{first}] ({ControlPlaneException.Quote(spec.Addresses[first])}) answer as cluster '{name}' from two stores ('{info.StoreId}' and '{identities[first]!.StoreId}'): two clusters with one id; every address must reach the same cluster",
                    $"spec.addresses[{i}]");
            }
        }
    }

    protected override ControlPlaneException ClaimRefused(ClaimTakenException refused) =>
        new(ErrorCode.FailedPrecondition, $"cluster '{Key}' cannot join: {PeerJudge.Overlap(_ranges, refused)}", "spec.addresses");

    protected override ClusterPeer Merge(ClusterPeer current, ClusterPeer requested)
    {
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        current.Spec = requested.Spec;
        return current;
    }

    public async Task<bool> ObserveAsync(ClusterInfo info, ClusterPeerStatus observed)
    {
        if (State is null)
        {
            return false;
        }
        var (ranges, reason, message) = PeerJudge.Judge(Key, info, observed, clusterSet, Services.Options);
        var now = Time.GetUtcNow();
        var wanted = State.Clone();
        wanted.Status ??= new ClusterPeerStatus();
        if (reason is null)
        {
            Fill(wanted.Status, observed, ranges);
            Conditions.Set(wanted.Status.Conditions, Conditions.Of(PeerJudge.Joined, Conditions.True, "Joined", string.Empty), now);
            _ranges = ranges;
            try
            {
                await WriteIfChangedAsync(wanted, [.. ranges.Select(PeerJudge.ClaimOf)]);
                return true;
            }
            catch (ClaimTakenException refused)
            {
                (reason, message) = ("Overlap", PeerJudge.Overlap(ranges, refused));
                wanted = State.Clone();
                wanted.Status ??= new ClusterPeerStatus();
            }
        }
        // Refused: nothing of the peer is held or routed here.
        Fill(wanted.Status, new ClusterPeerStatus(), []);
        Conditions.Set(wanted.Status.Conditions, Conditions.Of(PeerJudge.Joined, Conditions.False, reason!, message!), now);
        await WriteIfChangedAsync(wanted, []);
        return false;
    }

    private async Task WriteIfChangedAsync(ClusterPeer wanted, IReadOnlyList<Storage.Claim> claims)
    {
        if (!wanted.Equals(State))
        {
            await WriteAsync(wanted, claims);
        }
    }

    private static void Fill(ClusterPeerStatus status, ClusterPeerStatus observed, IReadOnlyList<PeerRange> ranges)
    {
        status.Ranges.Clear();
        status.Ranges.Add(ranges.Select(r => r.Prefix.ToString()));
        status.Networks.Clear();
        status.Networks.Add(observed.Networks.OrderBy(n => n.Name, StringComparer.Ordinal));
        status.Nodes.Clear();
        status.Nodes.Add(observed.Nodes.OrderBy(n => n.Name, StringComparer.Ordinal));
    }
}
