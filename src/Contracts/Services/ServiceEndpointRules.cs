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
}
