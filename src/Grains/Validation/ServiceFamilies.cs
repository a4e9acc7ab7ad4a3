using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Validation;

/// <summary>
/// A service's IP families as Kubernetes defines them (ipFamilies, ipFamilyPolicy, clusterIPs):
/// checks what the user gave and fills in the rest, in place. The configured service ranges
/// decide what exists; the first configured range's family is the primary one.
/// </summary>
public static class ServiceFamilies
{
    public const string IPv4 = "IPv4";
    public const string IPv6 = "IPv6";
    public const string SingleStack = "SingleStack";
    public const string PreferDualStack = "PreferDualStack";
    public const string RequireDualStack = "RequireDualStack";

    public static string NameOf(AddressFamily family) => family == AddressFamily.InterNetwork ? IPv4 : IPv6;

    public static void Resolve(ServiceSpec spec, ControlPlaneOptions options)
    {
        if (spec.Type == ServiceType.ExternalName)
        {
            if (spec.IpFamilies.Count > 0) throw ControlPlaneException.Invalid("spec.ip_families", "is not allowed for EXTERNAL_NAME services");
            if (spec.IpFamilyPolicy.Length > 0) throw ControlPlaneException.Invalid("spec.ip_family_policy", "is not allowed for EXTERNAL_NAME services");
            if (spec.ClusterIps.Count > 0) throw ControlPlaneException.Invalid("spec.cluster_ips", "is not allowed for EXTERNAL_NAME services");
            return;
        }
        if (spec.Type == ServiceType.Headless && spec.ClusterIps.Count > 0)
        {
            throw ControlPlaneException.Invalid("spec.cluster_ips", "is not allowed for HEADLESS services");
        }
        var configured = new List<string>();
        if (options.ServiceIpv4Cidr.Length > 0) configured.Add(IPv4);
        if (options.ServiceIpv6Cidr.Length > 0) configured.Add(IPv6);
        if (spec.IpFamilyPolicy.Length == 0) spec.IpFamilyPolicy = SingleStack;
        if (spec.IpFamilyPolicy is not (SingleStack or PreferDualStack or RequireDualStack))
        {
            throw ControlPlaneException.Invalid("spec.ip_family_policy", $"{ControlPlaneException.Quote(spec.IpFamilyPolicy)} is not SingleStack, PreferDualStack or RequireDualStack");
        }
        if (spec.ClusterIps.Count > 2) throw ControlPlaneException.Invalid("spec.cluster_ips", "names more than two addresses");
        if (spec.IpFamilies.Count > 2) throw ControlPlaneException.Invalid("spec.ip_families", "names more than two families");
        var requested = new List<IPAddress>();
        for (var i = 0; i < spec.ClusterIps.Count; i++)
        {
            var address = AddressInput.ParseHost($"spec.cluster_ips[{i}]", spec.ClusterIps[i]);
            spec.ClusterIps[i] = address.ToString();
            requested.Add(address);
        }
        for (var i = 0; i < spec.IpFamilies.Count; i++)
        {
            if (spec.IpFamilies[i] is not (IPv4 or IPv6)) throw ControlPlaneException.Invalid($"spec.ip_families[{i}]", $"{ControlPlaneException.Quote(spec.IpFamilies[i])} is not IPv4 or IPv6");
            if (spec.IpFamilies.IndexOf(spec.IpFamilies[i]) != i) throw ControlPlaneException.Invalid($"spec.ip_families[{i}]", $"{spec.IpFamilies[i]} is listed twice");
        }
        // Requested addresses name their families when ip_families does not.
        for (var i = 0; i < requested.Count; i++)
        {
            var family = NameOf(requested[i].AddressFamily);
            if (i < spec.IpFamilies.Count && spec.IpFamilies[i] != family)
            {
                throw ControlPlaneException.Invalid($"spec.cluster_ips[{i}]", $"{requested[i]} is not of family {spec.IpFamilies[i]} (spec.ip_families[{i}])");
            }
            if (i >= spec.IpFamilies.Count)
            {
                if (spec.IpFamilies.Contains(family)) throw ControlPlaneException.Invalid($"spec.cluster_ips[{i}]", $"asks for a second {family} address");
                spec.IpFamilies.Add(family);
            }
        }
        if (spec.IpFamilies.Count == 0)
        {
            if (configured.Count == 0) throw ControlPlaneException.Invalid("spec.ip_family_policy", "no service range is configured");
            spec.IpFamilies.Add(configured[0]);
        }
        if (spec.IpFamilyPolicy == SingleStack && spec.IpFamilies.Count > 1)
        {
            throw ControlPlaneException.Invalid("spec.ip_families", "names two families but spec.ip_family_policy is SingleStack");
        }
        if (spec.IpFamilyPolicy != SingleStack && spec.IpFamilies.Count == 1)
        {
            var other = spec.IpFamilies[0] == IPv4 ? IPv6 : IPv4;
            if (configured.Contains(other)) spec.IpFamilies.Add(other);
            else if (spec.IpFamilyPolicy == RequireDualStack)
                throw ControlPlaneException.Invalid("spec.ip_family_policy", $"RequireDualStack needs an {other} service range, and none is configured");
        }
        for (var i = 0; i < spec.IpFamilies.Count; i++)
        {
            if (!configured.Contains(spec.IpFamilies[i]))
            {
                throw ControlPlaneException.Invalid($"spec.ip_families[{i}]", $"{spec.IpFamilies[i]} has no service range (ControlPlane:Service{spec.IpFamilies[i].Replace("IP", "Ip", StringComparison.Ordinal)}Cidr)");
            }
        }
    }
}
