using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Services;

/// <summary>
/// Where a service port reaches an endpoint, written once for the agents that program the virtual
/// addresses and for the DNS server that publishes SRV records, so that DNS never advertises a port
/// the data path does not forward to.
/// </summary>
public static class ServicePorts
{
    /// <summary>
    /// The endpoint's port for <paramref name="port"/>: a named target is the endpoint's port of that
    /// name <em>and</em> protocol (Kubernetes' rule), a number is itself, and no target (or 0) is the
    /// service port. Null when the endpoint has no such named port.
    /// </summary>
    public static ushort? Target(ServicePort port, EndpointAddress endpoint)
    {
        switch (port.TargetCase)
        {
            case ServicePort.TargetOneofCase.TargetPortName:
                var protocol = PolicySemantics.ProtocolNumber(port.Protocol);
                foreach (var named in endpoint.Ports)
                {
                    if (named.Name == port.TargetPortName && PolicySemantics.ProtocolNumber(named.Protocol) == protocol) return (ushort)named.Port;
                }
                return null;
            case ServicePort.TargetOneofCase.TargetPortNumber when port.TargetPortNumber != 0:
                return (ushort)port.TargetPortNumber;
            default:
                return (ushort)port.Port;
        }
    }
}
