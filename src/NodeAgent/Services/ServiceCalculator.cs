using System.Net;
using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.Services;
using ControlPlane.Contracts.V1;
using ControlPlane.NodeAgent.Table;
using ControlPlane.Dataplane.Linux.Nftables;

namespace ControlPlane.NodeAgent.Services;

/// <summary>One endpoint a service port sends to.</summary>
public readonly record struct Backend(IPAddress Address, ushort Port);

/// <summary>One VIP:port of a service and where it leads.</summary>
public sealed record ServicePortProgram(IPAddress Vip, byte Protocol, ushort Port, IReadOnlyList<Backend> Backends, uint AffinitySeconds);

/// <summary>
/// Pure: the elements a service needs on every node, and the elements this node's own endpoints
/// need. No I/O and no memory of earlier results; the proxy diffs groups against what it programmed.
/// </summary>
public static class ServiceCalculator
{
    /// <summary>The group of this node's own endpoints (hairpin pairs).</summary>
    public const string LocalEndpointsGroup = "";

    public const uint DefaultAffinitySeconds = 10_800;

    /// <summary>
    /// A ClusterIP service: for each port and VIP, its ready endpoints of the same family, the
    /// target port resolved per endpoint (by number, or by name and protocol from the endpoint's
    /// own ports; an endpoint without that name is left out). No ready endpoint: the VIP:port is
    /// listed as rejecting instead. Each VIP serves its service's network only: the network's
    /// range of the VIP's family (none while the network is unknown: then nothing is served).
    /// </summary>
    public static ElementGroup ForService(Service? service, ServiceEndpoints? endpoints, IReadOnlyDictionary<string, Network> networks)
    {
        if (service is null || service.Spec.Type is not (ServiceType.Unspecified or ServiceType.ClusterIp) || service.Status.ClusterIps.Count == 0)
        {
            return ElementGroup.Empty;
        }
        var sources = new[] { (Ports: (IReadOnlyList<ServicePort>)service.Spec.Ports, Endpoints: (IReadOnlyList<EndpointAddress>?)endpoints?.Endpoints ?? []) };
        var network = networks.GetValueOrDefault(service.Spec.Network);
        return Build(service.Status.ClusterIps, service.Spec.Ports, Affinity(service.Spec.SessionAffinity, service.Spec.SessionAffinityTimeoutSeconds), sources, SameProtocolAndNumber,
            network is null ? [] : [network], ServiceEndpointRules.Serves(service.Spec));
    }

    /// <summary>The prefix of an import's group key (":" never occurs in a namespace or name).</summary>
    public const string ImportGroupPrefix = "import:";

    /// <summary>
    /// A ClusterSetIP import: like a service, over the endpoints of every exporting cluster. The
    /// import's ports are the union of the exports' ports, a port known by its name (KEP-1645), so
    /// each cluster maps the import's port to its own service port of the same name and protocol,
    /// whose target is resolved per endpoint; a cluster whose export has no such port (or has that
    /// name for another protocol) adds no endpoints to it. The number on the ClusterSetIP is the
    /// import's: a cluster whose export gave the port another number (a conflict, which the oldest
    /// export wins) still serves it at its own target. An import names no network, so its
    /// ClusterSetIPs serve every network's endpoints (routing still keeps a translated packet
    /// within its network), and nothing from outside all networks.
    /// </summary>
    public static ElementGroup ForImport(ServiceImport? import, IReadOnlyDictionary<string, Network> networks)
    {
        if (import is null || import.Spec.Type != ServiceImportType.ClusterSetIp || import.Spec.Ips.Count == 0)
        {
            return ElementGroup.Empty;
        }
        var sources = import.Status?.Clusters.Select(c => (Ports: (IReadOnlyList<ServicePort>)c.Ports, Endpoints: (IReadOnlyList<EndpointAddress>)c.Endpoints)).ToArray() ?? [];
        return Build(import.Spec.Ips, import.Spec.Ports, Affinity(import.Spec.SessionAffinity, import.Spec.SessionAffinityTimeoutSeconds), sources, SameNameAndProtocol,
            networks.Values, static _ => true); // status.clusters lists the endpoints to serve (ServiceEndpointRules, applied by the silo)
    }

    private static uint Affinity(SessionAffinity affinity, uint timeout) =>
        affinity == SessionAffinity.ClientIp ? (timeout == 0 ? DefaultAffinitySeconds : timeout) : 0;

    private static bool SameProtocolAndNumber(ServicePort port, ServicePort own) =>
        own.Port == port.Port && PolicySemantics.ProtocolNumber(own.Protocol) == PolicySemantics.ProtocolNumber(port.Protocol);

    private static bool SameNameAndProtocol(ServicePort port, ServicePort own) =>
        own.Name == port.Name && PolicySemantics.ProtocolNumber(own.Protocol) == PolicySemantics.ProtocolNumber(port.Protocol);

    /// <summary>
    /// The elements of virtual IPs and ports over endpoint sources: each source's own port that
    /// <paramref name="same"/> matches to the virtual IP's port gives the target, resolved per endpoint.
    /// </summary>
    private static ElementGroup Build(IEnumerable<string> vips, IReadOnlyList<ServicePort> servicePorts, uint affinity,
        IReadOnlyList<(IReadOnlyList<ServicePort> Ports, IReadOnlyList<EndpointAddress> Endpoints)> sources, Func<ServicePort, ServicePort, bool> same,
        IEnumerable<Network> servedNetworks, Func<EndpointAddress, bool> serves)
    {
        var elements = new List<(string, NftElement)>();
        var chains = new List<string>();
        var ports = new List<ServicePortProgram>();
        foreach (var vipText in vips)
        {
            if (!IPAddress.TryParse(vipText, out var vip)) continue;
            var family = FamilyLayout.Of(vip);
            var v6 = family == FamilyLayout.V6;
            elements.Add((family.Vips, new NftElement(ServiceRuleset.VipKey(vip))));
            foreach (var network in servedNetworks)
            {
                if (AddressRange.ParseCidr(v6 ? network.Spec.Ipv6Cidr : network.Spec.Ipv4Cidr) is { } range)
                {
                    elements.Add((family.VipSources, ServiceRuleset.VipSource(vip, range)));
                }
            }
            foreach (var port in servicePorts)
            {
                var protocol = PolicySemantics.ProtocolNumber(port.Protocol);
                var servicePort = (ushort)port.Port;
                var backends = new List<Backend>();
                foreach (var (sourcePorts, addresses) in sources)
                {
                    var own = sourcePorts.FirstOrDefault(p => same(port, p));
                    if (own is null) continue;
                    foreach (var address in addresses)
                    {
                        if (!serves(address)) continue;
                        var target = ServicePorts.Target(own, address);
                        if (target is null) continue;
                        foreach (var ipText in address.Ips)
                        {
                            if (IPAddress.TryParse(ipText, out var ip) && ip.AddressFamily == vip.AddressFamily)
                            {
                                backends.Add(new Backend(ip, target.Value));
                            }
                        }
                    }
                }
                backends = [.. backends.Distinct().OrderBy(b => b.Address.ToString(), StringComparer.Ordinal).ThenBy(b => b.Port)];
                ports.Add(new ServicePortProgram(vip, protocol, servicePort, backends, affinity));
                if (backends.Count == 0)
                {
                    elements.Add((family.NoEndpoints, new NftElement(ServiceRuleset.ServicePortKey(vip, protocol, servicePort))));
                    continue;
                }
                var key = ServiceRuleset.ServicePortKey(vip, protocol, servicePort);
                chains.Add(ServiceRuleset.BalancerChain(backends.Count));
                elements.Add((family.Dispatch, new NftElement(key, Verdict: NftVerdict.GotoChain(ServiceRuleset.BalancerChain(backends.Count)))));
                if (affinity > 0)
                {
                    chains.Add(ServiceRuleset.AffinityChain(affinity));
                    elements.Add((family.AffinityServices, new NftElement(key, Verdict: NftVerdict.JumpChain(ServiceRuleset.AffinityChain(affinity)))));
                }
                for (var slot = 0; slot < backends.Count; slot++)
                {
                    elements.Add((family.Backends, new NftElement(ServiceRuleset.BackendKey(vip, protocol, servicePort, slot),
                        ServiceRuleset.Backend(backends[slot].Address, backends[slot].Port))));
                }
            }
        }
        return new ElementGroup(elements, chains, ports);
    }

    /// <summary>This node's endpoints: their hairpin pairs (an endpoint reaching itself through a VIP is masqueraded).</summary>
    public static ElementGroup ForLocalEndpoints(IEnumerable<KeyValuePair<string, Endpoint>> endpoints, string self)
    {
        var elements = new List<(string, NftElement)>();
        foreach (var (_, endpoint) in endpoints)
        {
            if (endpoint.Spec.Node != self) continue;
            foreach (var ipText in endpoint.Status.Ips)
            {
                if (IPAddress.TryParse(ipText, out var ip))
                {
                    elements.Add((FamilyLayout.Of(ip).Hairpin, new NftElement(ServiceRuleset.HairpinKey(ip))));
                }
            }
        }
        return new ElementGroup(elements, [], []);
    }
}
