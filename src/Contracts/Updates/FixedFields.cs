using System.Net;
using System.Reflection;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;

namespace ControlPlane.Contracts.Updates;

/// <summary>A field an update may not change: its path, what the stored object has, and why.</summary>
public readonly record struct FixedField(string Field, string Stored, string Reason);

/// <summary>
/// Which fields an update may not change, for the grains that refuse such an update and for
/// netctl, which plans an apply before it sends anything: one rule, so the plan never refuses
/// what the server accepts (or the other way round). A field left empty in the update keeps the
/// stored value and changes nothing. As in Kubernetes, a service changes type only to or from
/// EXTERNAL_NAME, and then its network, families and virtual IPs are those of the new type; it
/// may go from single- to dual-stack and back, keeping its primary family and address.
/// </summary>
public static class FixedFields
{
    /// <summary>The reason of a field that never changes.</summary>
    public const string Immutable = "is immutable";

    /// <summary>The first field <paramref name="requested"/> changes that <paramref name="stored"/> fixes; null when there is none.</summary>
    public static FixedField? Changed(IMessage stored, IMessage requested) => (stored, requested) switch
    {
        (Network { Spec: { } was }, Network { Spec: { } now }) => Network(was, now),
        (Endpoint { Spec: { } was } endpoint, Endpoint { Spec: { } now }) => Endpoint(was, endpoint.Status?.Ips ?? [], now),
        (Service { Spec: { } was } service, Service { Spec: { } now }) => Service(was, service.Status?.ClusterIps ?? [], now),
        _ => null,
    };

    private static FixedField? Network(NetworkSpec was, NetworkSpec now) =>
        now.Vni != was.Vni ? new("spec.vni", was.Vni.ToString(System.Globalization.CultureInfo.InvariantCulture), Immutable)
        : now.Ipv4Cidr != was.Ipv4Cidr ? new("spec.ipv4_cidr", was.Ipv4Cidr, Immutable)
        : now.Ipv6Cidr != was.Ipv6Cidr ? new("spec.ipv6_cidr", was.Ipv6Cidr, Immutable)
        : now.Ipv4BlockPrefixLength != 0 && now.Ipv4BlockPrefixLength != was.Ipv4BlockPrefixLength ? new("spec.ipv4_block_prefix_length", "/" + was.Ipv4BlockPrefixLength, Immutable)
        : now.Ipv6BlockPrefixLength != 0 && now.Ipv6BlockPrefixLength != was.Ipv6BlockPrefixLength ? new("spec.ipv6_block_prefix_length", "/" + was.Ipv6BlockPrefixLength, Immutable)
        : null;

    // Addresses an update names are no change when they are the ones asked for at creation, or
    // addresses the object holds (what a client read back and sends again: all of them or some, in
    // any order and however each is written; an endpoint's addresses have no order that means anything).
    private static FixedField? Endpoint(EndpointSpec was, IReadOnlyList<string> held, EndpointSpec now) =>
        now.Network != was.Network ? new("spec.network", was.Network, Immutable)
        : now.Node != was.Node ? new("spec.node", was.Node, Immutable)
        : now.Ips.Count > 0 && !SameAddresses(now.Ips, was.Ips) && !AllHeld(now.Ips, held) ? new("spec.ips", string.Join(",", held.Count > 0 ? held : was.Ips), Immutable)
        : null;

    /// <summary>Whether every address named is one of those held, however each is written.</summary>
    private static bool AllHeld(IReadOnlyList<string> named, IReadOnlyList<string> held) =>
        named.All(address => held.Any(h => Canonical(h) == Canonical(address)));

    private static FixedField? Service(ServiceSpec was, IReadOnlyList<string> held, ServiceSpec now)
    {
        var type = now.Type == ServiceType.Unspecified ? ServiceType.ClusterIp : now.Type;
        if (type != was.Type)
        {
            return was.Type == ServiceType.ExternalName || type == ServiceType.ExternalName
                ? null
                : new("spec.type", ApiName(was.Type), $"cannot change from {ApiName(was.Type)} to {ApiName(type)}: a service changes type only to or from EXTERNAL_NAME");
        }
        return now.Network != was.Network ? new("spec.network", was.Network, Immutable)
            // As Kubernetes: a service goes from single- to dual-stack and back (its policy, and
            // its second family), but its primary family stays.
            : was.IpFamilies.Count > 0 && now.IpFamilies.Count > 0 && now.IpFamilies[0] != was.IpFamilies[0] ? new("spec.ip_families[0]", was.IpFamilies[0],
                "cannot change: the primary (first) family is fixed; only the second family may be added or removed")
            : now.ClusterIps.Count > 0 && !SameAddresses(now.ClusterIps, was.ClusterIps) ? ClusterIps(held, now.ClusterIps)
            : null;
    }

    /// <summary>
    /// As Kubernetes: a service's virtual IPs stay, but an update may name them as they are, name
    /// only the primary one (going back to single-stack), or name a second one for the family it
    /// gains (going dual-stack).
    /// </summary>
    private static FixedField? ClusterIps(IReadOnlyList<string> held, IReadOnlyList<string> now) =>
        FirstNotHeld(held, now) is { } i ? new($"spec.cluster_ips[{i}]", i < held.Count ? held[i] : "", Immutable) : null;

    /// <summary>
    /// The first of the addresses an update names that differs from the one held at its position
    /// (any, when nothing is held); null when they agree where both have one (those named beyond
    /// what is held ask for more).
    /// </summary>
    public static int? FirstNotHeld(IReadOnlyList<string> held, IReadOnlyList<string> named)
    {
        for (var i = 0; i < named.Count; i++)
        {
            if (i < held.Count ? Canonical(named[i]) != Canonical(held[i]) : held.Count == 0) return i;
        }
        return null;
    }

    /// <summary>The same addresses in the same order, however each is written (fd00::1 is fd00:0::0001).</summary>
    private static bool SameAddresses(IReadOnlyList<string> a, IReadOnlyList<string> b) =>
        a.Count == b.Count && a.Select(Canonical).SequenceEqual(b.Select(Canonical));

    private static string Canonical(string address) => IPAddress.TryParse(address, out var ip) ? ip.ToString() : address;

    /// <summary>An enum value as the API spells it (CLUSTER_IP), not as C# does (ClusterIp).</summary>
    public static string ApiName<T>(T value) where T : struct, Enum =>
        typeof(T).GetField(value.ToString()) is { } field && field.GetCustomAttribute<OriginalNameAttribute>() is { } name ? name.Name : value.ToString();
}
