using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Services;

/// <summary>
/// Which endpoints of a service's set receive its traffic and appear in its DNS records, written
/// once for the agents' virtual IPs, the DNS server and ClusterSet exports: the ready ones, or all
/// of them when the service publishes not-ready addresses (Kubernetes: the service's endpoints
/// then ignore readiness, for DNS and for kube-proxy alike).
/// </summary>
public static class ServiceEndpointRules
{
    public static bool Serves(ServiceSpec spec, EndpointAddress endpoint) => endpoint.Ready || spec.PublishNotReadyAddresses;

    /// <summary><see cref="Serves(ServiceSpec, EndpointAddress)"/> bound to one service.</summary>
    public static Func<EndpointAddress, bool> Serves(ServiceSpec spec) =>
        spec.PublishNotReadyAddresses ? static _ => true : static e => e.Ready;

    /// <summary>
    /// Whether an endpoint's address (text) is of one of the service's IP families, every
    /// address when it names none: as Kubernetes keeps an EndpointSlice per family, an IPv4
    /// service's records and exports hold no IPv6 address of a dual-stack endpoint.
    /// </summary>
    public static bool OfFamilies(ServiceSpec spec, string ip) =>
        spec.IpFamilies.Count == 0 || spec.IpFamilies.Contains(ip.Contains(':', StringComparison.Ordinal) ? "IPv6" : "IPv4");

    /// <summary>The endpoint with only the addresses <see cref="OfFamilies"/> keeps (itself when that is all of them).</summary>
    public static EndpointAddress WithFamiliesOf(ServiceSpec spec, EndpointAddress endpoint)
    {
        if (endpoint.Ips.All(ip => OfFamilies(spec, ip))) return endpoint;
        var kept = endpoint.Clone();
        kept.Ips.Clear();
        kept.Ips.Add(endpoint.Ips.Where(ip => OfFamilies(spec, ip)));
        return kept;
    }
}
