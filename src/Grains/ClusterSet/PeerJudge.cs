using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Storage;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.ClusterSet;

/// <summary>One range a peer uses, and where it comes from (for messages that name both sides of an overlap).</summary>
public readonly record struct PeerRange(IpPrefix Prefix, string Origin)
{
    public override string ToString() => $"{Prefix} ({Origin})";
}

/// <summary>
/// Whether a peer may join: it must be the cluster its ClusterPeer names, of this ClusterSet, and
/// none of its network or service ranges may overlap another of its own or this cluster's
/// service ranges. (Overlaps with this cluster's networks and other peers' ranges are refused by
/// the store, where the peer's ranges are claimed.) Pure.
/// </summary>
public static class PeerJudge
{
    public const string Joined = "Joined";

    /// <summary>The peer's ranges, or the reason and message of a refusal.</summary>
    public static (IReadOnlyList<PeerRange> Ranges, string? Reason, string? Message) Judge(
        string peer, ClusterInfo info, ClusterPeerStatus observed, ClusterSetOptions self, ControlPlaneOptions local)
    {
        if (info.ClusterId != peer)
        {
            return ([], "WrongCluster", $"the silos at spec.addresses are cluster '{info.ClusterId}', not '{peer}'");
        }
        if (info.ClusterSet != self.Name)
        {
            return ([], "OtherClusterSet", $"cluster '{peer}' belongs to ClusterSet '{info.ClusterSet}', this cluster to '{self.Name}'");
        }
        var ranges = new List<PeerRange>();
        try
        {
            foreach (var network in observed.Networks)
            {
                ranges.Add(new(AddressInput.ParseStoredPrefix("ipv4_cidr", network.Ipv4Cidr), $"network '{network.Name}' of cluster '{peer}'"));
                if (network.Ipv6Cidr.Length > 0)
                {
                    ranges.Add(new(AddressInput.ParseStoredPrefix("ipv6_cidr", network.Ipv6Cidr), $"network '{network.Name}' of cluster '{peer}'"));
                }
            }
            ranges.AddRange(info.ServiceRanges.Select(r => new PeerRange(AddressInput.ParsePrefix("service_ranges", r), $"the service range of cluster '{peer}'")));
        }
        catch (ControlPlaneException e)
        {
            return ([], "Invalid", $"cluster '{peer}' sent a range that does not parse: {e.Message}");
        }
        var own = new[] { local.ServiceIpv4Cidr, local.ServiceIpv6Cidr }.Where(c => c.Length > 0)
            .Select(c => new PeerRange(AddressInput.ParsePrefix("service range", c), "this cluster's service range"));
        for (var i = 0; i < ranges.Count; i++)
        {
            foreach (var other in ranges.Take(i).Concat(own))
            {
                if (ranges[i].Prefix.Overlaps(other.Prefix))
                {
                    return ([], "Overlap", $"{ranges[i]} overlaps {other}");
                }
            }
        }
        return (ranges, null, null);
    }

    /// <summary>The message for a range claim the store refused: the peer's range and the one its holder has.</summary>
    public static string Overlap(IReadOnlyList<PeerRange> ranges, ClaimTakenException refused)
    {
        var held = Claims.RangeOf(refused.Holder.Claim);
        var ours = ranges.FirstOrDefault(r => r.Prefix.Overlaps(held));
        var holder = refused.Holder.Kind == Resources.Kinds.ClusterPeer
            ? $"a range of cluster '{refused.Holder.Key}'"
            : $"{refused.Holder.Kind.ToLowerInvariant()} '{refused.Holder.Key}' of this cluster";
        return $"{ours} overlaps {held} ({holder})";
    }

    public static Claim ClaimOf(PeerRange range) => Claims.Range(range.Prefix);

    /// <summary>True when the peer's Joined condition is True.</summary>
    public static bool IsJoined(ClusterPeer peer) =>
        peer.Status is not null && Conditions.Find(peer.Status.Conditions, Joined)?.Status == Conditions.True;
}
