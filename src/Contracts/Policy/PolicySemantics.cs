using System.Net;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Policy;

public enum PolicyDirection
{
    Ingress,
    Egress,
}

/// <summary>A destination port range of one protocol (IANA protocol number).</summary>
public readonly record struct PortRange(byte Protocol, ushort First, ushort Last)
{
    public bool Contains(byte protocol, ushort port) => protocol == Protocol && port >= First && port <= Last;
}

/// <summary>
/// The Kubernetes NetworkPolicy semantics, written once for the agents that enforce policies and
/// for the control plane that explains them:
/// <list type="bullet">
/// <item>a policy selects pods of its own namespace by pod_selector (empty: all of them);</item>
/// <item>it affects the directions in policy_types; without them, Ingress, plus Egress when it has egress rules;</item>
/// <item>an endpoint selected by no policy for a direction is open in that direction; otherwise only
/// the union of the rules of the policies selecting it is allowed;</item>
/// <item>a rule without peers allows every peer, without ports every port and protocol;</item>
/// <item>a peer with pod_selector only: pods of the policy's namespace; namespace_selector only: every
/// pod of the matching namespaces; both: pods matching pod_selector in matching namespaces (AND);
/// ip_block: addresses in the CIDR outside every except;</item>
/// <item>a named port is resolved on the destination endpoint (its port of that name and protocol);
/// a destination without it, or one that is no endpoint, does not match.</item>
/// </list>
/// </summary>
public static class PolicySemantics
{
    public const byte Tcp = 6, Udp = 17, Sctp = 132;

    /// <summary>The label every namespace carries implicitly (as Kubernetes sets it).</summary>
    public const string NamespaceNameLabel = "kubernetes.io/metadata.name";

    private static readonly LabelSelector Everything = new();

    public static byte ProtocolNumber(Protocol protocol) => protocol switch
    {
        Protocol.Udp => Udp,
        Protocol.Sctp => Sctp,
        _ => Tcp,
    };

    public static string ProtocolName(byte protocol) => protocol switch
    {
        Tcp => "TCP",
        Udp => "UDP",
        Sctp => "SCTP",
        _ => protocol.ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    public static bool Affects(NetworkPolicySpec spec, PolicyDirection direction)
    {
        if (spec.PolicyTypes.Count == 0) return direction == PolicyDirection.Ingress || spec.Egress.Count > 0;
        return spec.PolicyTypes.Contains(direction == PolicyDirection.Ingress ? "Ingress" : "Egress");
    }

    public static IList<NetworkPolicyRule> Rules(NetworkPolicySpec spec, PolicyDirection direction) =>
        direction == PolicyDirection.Ingress ? spec.Ingress : spec.Egress;

    /// <summary>Whether the policy selects the endpoint (same namespace, pod_selector matches).</summary>
    public static bool Selects(NetworkPolicy policy, Endpoint endpoint) =>
        policy.Metadata.Namespace == endpoint.Metadata.Namespace && LabelSelectors.Matches(policy.Spec.PodSelector ?? Everything, endpoint.Metadata.Labels);

    /// <summary>A namespace's labels for selectors: its own plus <see cref="NamespaceNameLabel"/>.</summary>
    public static IReadOnlyDictionary<string, string> NamespaceLabels(string name, Namespace? ns)
    {
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (ns is not null)
        {
            foreach (var (key, value) in ns.Metadata.Labels) labels[key] = value;
        }
        labels[NamespaceNameLabel] = name;
        return labels;
    }

    /// <summary>Whether a selector peer (no ip_block) selects the endpoint, given its namespace's labels.</summary>
    public static bool PeerSelects(NetworkPolicyPeer peer, string policyNamespace, Endpoint endpoint, IReadOnlyDictionary<string, string> endpointNamespaceLabels)
    {
        if (peer.IpBlock is not null) return false;
        var inNamespace = peer.NamespaceSelector is null
            ? endpoint.Metadata.Namespace == policyNamespace
            : LabelSelectors.Matches(peer.NamespaceSelector, endpointNamespaceLabels);
        return inNamespace && (peer.PodSelector is null || LabelSelectors.Matches(peer.PodSelector, endpoint.Metadata.Labels));
    }

    /// <summary>The addresses of an ip_block: the CIDR without its excepts (empty when unparsable).</summary>
    public static List<AddressRange> BlockRanges(IPBlock block)
    {
        if (AddressRange.ParseCidr(block.Cidr) is not { } cidr) return [];
        return block.Except.Count == 0 ? [cidr] : cidr.Except(block.Except.Select(AddressRange.ParseCidr).OfType<AddressRange>());
    }

    /// <summary>
    /// The ports a policy port allows on a destination: a number (to end_port), a name resolved on
    /// the destination's ports, or every port of the protocol. Null when the name does not resolve
    /// or the protocol is unknown.
    /// </summary>
    public static PortRange? Resolve(NetworkPolicyPort port, Endpoint? destination)
    {
        // A protocol this version does not know (a newer control plane) allows nothing: closed, not open.
        if (!Enum.IsDefined(port.Protocol)) return null;
        var protocol = ProtocolNumber(port.Protocol);
        switch (port.PortCase)
        {
            case NetworkPolicyPort.PortOneofCase.Number:
                return new PortRange(protocol, (ushort)port.Number, (ushort)(port.EndPort == 0 ? port.Number : port.EndPort));
            case NetworkPolicyPort.PortOneofCase.Name:
                foreach (var named in destination?.Spec.Ports ?? [])
                {
                    if (named.Name == port.Name && ProtocolNumber(named.Protocol) == protocol) return new PortRange(protocol, (ushort)named.Port, (ushort)named.Port);
                }
                return null;
            default:
                return new PortRange(protocol, 0, ushort.MaxValue);
        }
    }

    /// <summary>Whether any port of the rule allows protocol/port on the destination (no ports: all).</summary>
    public static bool PortsAllow(NetworkPolicyRule rule, byte protocol, ushort port, Endpoint? destination)
    {
        if (rule.Ports.Count == 0) return true;
        foreach (var p in rule.Ports)
        {
            if (Resolve(p, destination) is { } range && range.Contains(protocol, port)) return true;
        }
        return false;
    }

    /// <summary>Whether any peer of the rule is the given endpoint or address (no peers: all).</summary>
    public static bool PeersAllow(NetworkPolicyRule rule, string policyNamespace, Endpoint? endpoint, IPAddress address, IReadOnlyDictionary<string, string>? endpointNamespaceLabels)
    {
        if (rule.Peers.Count == 0) return true;
        foreach (var peer in rule.Peers)
        {
            if (peer.IpBlock is { } block)
            {
                if (BlockRanges(block).Any(r => r.Contains(address))) return true;
            }
            else if (endpoint is not null && PeerSelects(peer, policyNamespace, endpoint, endpointNamespaceLabels!))
            {
                return true;
            }
        }
        return false;
    }

    public static string KeyOf(ObjectMeta meta) => $"{meta.Namespace}/{meta.Name}";
}
