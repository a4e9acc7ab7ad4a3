using System.Net;
using System.Net.Sockets;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.Addressing;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Naming;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Manifests;

/// <summary>
/// Client-side validation of every document before anything is sent: the server's rules for
/// names, labels, ports, protocols, address ranges, selectors, policy peers and ClusterSet peers'
/// silo addresses, each problem reported on its own. Addresses and prefixes are checked by the
/// server's own code (<see cref="AddressRules"/>, <see cref="IpPrefix"/>, <see cref="HostAddresses"/>
/// and <see cref="SpecialRanges"/> in Contracts), so a refusal reads as the server's for that field. Rules that depend on the server's
/// configuration or on other objects (service ranges, overlapping networks, free addresses, a
/// peer named like this cluster) are left to the plan (see <c>ApplyPlanner</c>) and to the server.
/// </summary>
internal sealed class ManifestValidator
{
    private readonly ManifestDocument _document;
    private readonly List<ManifestProblem> _problems;

    private ManifestValidator(ManifestDocument document, List<ManifestProblem> problems)
    {
        _document = document;
        _problems = problems;
    }

    /// <summary>Checks every document, fills in the namespace from <paramref name="defaultNamespace"/>, and reports duplicates.</summary>
    public static void Validate(IReadOnlyList<ManifestDocument> documents, string? defaultNamespace, bool namespaceFromFlag, List<ManifestProblem> problems)
    {
        var seen = new Dictionary<(string, string, string), ManifestDocument>();
        foreach (var document in documents)
        {
            var validator = new ManifestValidator(document, problems);
            validator.Metadata(defaultNamespace, namespaceFromFlag);
            switch (document.Message)
            {
                case Network network: validator.Network(network.Spec); break;
                case Node node: validator.Node(node.Spec); break;
                case Endpoint endpoint: validator.Endpoint(endpoint.Spec); break;
                case Service service: validator.Service(service.Spec); break;
                case NetworkPolicy policy: validator.Policy(policy.Spec); break;
                case ClusterPeer peer: validator.Peer(peer.Spec); break;
            }
            var meta = document.Meta;
            if (meta.Name.Length == 0) continue;
            var key = (document.Kind.Name, meta.Namespace, meta.Name);
            if (seen.TryGetValue(key, out var first))
                validator.Add("metadata.name", $"{document.Label} is already defined in {first.Source} {first.Position}");
            else
                seen[key] = document;
        }
    }

    private void Add(string? field, string message)
    {
        var problem = _document.Problem(field, message);
        if (problem.Field is { } typed && _document.UnreadableFields.Any(bad => typed == bad || typed.StartsWith(bad + ".", StringComparison.Ordinal) || typed.StartsWith(bad + "[", StringComparison.Ordinal))) return;
        _problems.Add(problem);
    }

    private void Metadata(string? defaultNamespace, bool namespaceFromFlag)
    {
        var meta = _document.Meta;
        var kind = _document.Kind;
        if (meta.Name.Length == 0)
        {
            Add("metadata.name", "is required");
        }
        else
        {
            var error = kind == ResourceKinds.Endpoint || kind == ResourceKinds.Node ? NameRules.Subdomain(meta.Name) : NameRules.Label(meta.Name);
            if (error is null && kind == ResourceKinds.Service && !char.IsAsciiLetter(meta.Name[0])) error = $"'{meta.Name}' must start with a letter (it becomes a DNS name)";
            if (error is null && kind == ResourceKinds.ServiceExport && !char.IsAsciiLetter(meta.Name[0])) error = $"'{meta.Name}' must start with a letter (it names a service)";
            if (error is not null) Add("metadata.name", error);
        }
        if (kind.Namespaced)
        {
            if (meta.Namespace.Length == 0)
            {
                if (defaultNamespace is null) Add("metadata.namespace", $"is required for {kind.Name} objects (or pass -n NAMESPACE)");
                else meta.Namespace = defaultNamespace;
            }
            else if (namespaceFromFlag && defaultNamespace is not null && meta.Namespace != defaultNamespace)
            {
                Add("metadata.namespace", $"'{meta.Namespace}' differs from -n {defaultNamespace}");
            }
            if (meta.Namespace.Length > 0 && NameRules.Label(meta.Namespace) is { } error) Add("metadata.namespace", error);
        }
        else if (meta.Namespace.Length > 0)
        {
            Add("metadata.namespace", $"a {kind.Name} is cluster-scoped and takes no namespace");
        }
        Labels("metadata.labels", meta.Labels);
    }

    private void Labels(string field, IEnumerable<KeyValuePair<string, string>> labels)
    {
        foreach (var (key, value) in labels)
        {
            if ((NameRules.LabelKey(key) ?? NameRules.LabelValue(value)) is { } error) Add($"{field}.{key}", error);
        }
    }

    private bool RequireSpec(object? spec)
    {
        if (spec is null) Add("spec", "is required");
        return spec is not null;
    }

    private void Network(NetworkSpec? spec)
    {
        if (!RequireSpec(spec)) return;
        if (spec!.Vni is 0 or > 16_777_215) Add("spec.vni", spec.Vni == 0 ? "is required (1..16777215)" : $"{spec.Vni} is outside 1..16777215");
        if (spec.Ipv4Cidr.Length == 0) Add("spec.ipv4_cidr", "is required");
        else Add(AddressRules.NetworkRange("spec.ipv4_cidr", spec.Ipv4Cidr, AddressFamily.InterNetwork, spec.Ipv4BlockPrefixLength, "spec.ipv4_block_prefix_length"));
        if (spec.Ipv6Cidr.Length > 0) Add(AddressRules.NetworkRange("spec.ipv6_cidr", spec.Ipv6Cidr, AddressFamily.InterNetworkV6, spec.Ipv6BlockPrefixLength, "spec.ipv6_block_prefix_length"));
        else if (spec.Ipv6BlockPrefixLength != 0) Add("spec.ipv6_block_prefix_length", "is set but the network has no spec.ipv6_cidr");
        var minimum = spec.Ipv6Cidr.Length > 0 ? 1280u : 576u;
        if (spec.Mtu != 0 && (spec.Mtu < minimum || spec.Mtu > 9000)) Add("spec.mtu", $"{spec.Mtu} is outside {minimum}..9000");
    }

    private void Add(FieldProblem? problem)
    {
        if (problem is { } refused) Add(refused.Field, refused.Reason);
    }

    /// <summary>A prefix as the server reads it (<see cref="IpPrefix.Parse"/>; <paramref name="masked"/>: a policy's ip_block, <see cref="IpPrefix.ParseMasked"/>).</summary>
    private IpPrefix? Prefix(string field, string text, bool masked = false)
    {
        var prefix = masked ? IpPrefix.ParseMasked(text, out var problem) : IpPrefix.Parse(text, out problem);
        if (problem is not null) Add(field, problem);
        return prefix;
    }

    /// <summary>An address as the server reads it (<see cref="HostAddresses.Parse"/>).</summary>
    private IPAddress? Host(string field, string text)
    {
        var address = HostAddresses.Parse(text, out var problem);
        if (problem is not null) Add(field, problem);
        return address;
    }

    private void Node(NodeSpec? spec)
    {
        if (!RequireSpec(spec)) return;
        if (spec!.UnderlayIp.Length == 0) Add("spec.underlay_ip", "is required");
        else if (AddressRules.UnderlayAddress(spec.UnderlayIp, out var problem) is null) Add("spec.underlay_ip", problem!);
    }

    private void Endpoint(EndpointSpec? spec)
    {
        if (!RequireSpec(spec)) return;
        if (spec!.Network.Length == 0) Add("spec.network", "is required");
        else if (NameRules.Label(spec.Network) is { } networkError) Add("spec.network", networkError);
        if (spec.Node.Length == 0) Add("spec.node", "is required");
        else if (NameRules.Subdomain(spec.Node) is { } nodeError) Add("spec.node", nodeError);
        if (spec.Hostname.Length > 0 && NameRules.Label(spec.Hostname) is { } hostError) Add("spec.hostname", hostError);
        if (spec.Subdomain.Length > 0 && NameRules.Label(spec.Subdomain) is { } subError) Add("spec.subdomain", subError);
        var names = new HashSet<string>(StringComparer.Ordinal);
        for (var i = 0; i < spec.Ports.Count; i++)
        {
            var port = spec.Ports[i];
            PortName($"spec.ports[{i}].name", port.Name);
            PortNumber($"spec.ports[{i}].port", port.Port);
            if (port.Name.Length > 0 && !names.Add(port.Name)) Add($"spec.ports[{i}].name", $"'{port.Name}' is used twice");
        }
        var families = new HashSet<AddressFamily>();
        for (var i = 0; i < spec.Ips.Count; i++)
        {
            if (Host($"spec.ips[{i}]", spec.Ips[i]) is { } address && !families.Add(address.AddressFamily))
                Add($"spec.ips[{i}]", "asks for a second address of the same family");
        }
    }

    private void Service(ServiceSpec? spec)
    {
        if (!RequireSpec(spec)) return;
        if (spec!.Type == ServiceType.ExternalName)
        {
            var name = spec.ExternalName.TrimEnd('.');
            if (name.Length == 0) Add("spec.external_name", "is required for EXTERNAL_NAME services");
            else if (NameRules.Subdomain(name) is { } error) Add("spec.external_name", error);
            if (spec.Network.Length > 0 && NameRules.Label(spec.Network) is { } networkError) Add("spec.network", networkError);
            if (spec.IpFamilies.Count > 0) Add("spec.ip_families", "is not allowed for EXTERNAL_NAME services");
            if (spec.IpFamilyPolicy.Length > 0) Add("spec.ip_family_policy", "is not allowed for EXTERNAL_NAME services");
            if (spec.ClusterIps.Count > 0) Add("spec.cluster_ips", "is not allowed for EXTERNAL_NAME services");
        }
        else
        {
            if (spec.ExternalName.Length > 0) Add("spec.external_name", "is only allowed for EXTERNAL_NAME services");
            if (spec.Network.Length == 0) Add("spec.network", "is required");
            else if (NameRules.Label(spec.Network) is { } networkError) Add("spec.network", networkError);
            if (spec.Type == ServiceType.Headless && spec.ClusterIps.Count > 0) Add("spec.cluster_ips", "is not allowed for HEADLESS services");
            Families(spec);
        }
        Labels("spec.selector", spec.Selector);
        var names = new HashSet<string>(StringComparer.Ordinal);
        var ports = new HashSet<(Protocol, uint)>();
        for (var i = 0; i < spec.Ports.Count; i++)
        {
            var port = spec.Ports[i];
            var at = $"spec.ports[{i}]";
            if (NameRules.ServicePortName(port.Name, spec.Ports.Count) is { } nameError) Add(at + ".name", nameError);
            if (!names.Add(port.Name) && port.Name.Length > 0) Add(at + ".name", $"'{port.Name}' is used twice");
            PortNumber(at + ".port", port.Port);
            if (port.Port != 0 && !ports.Add((port.Protocol == Protocol.Unspecified ? Protocol.Tcp : port.Protocol, port.Port)))
                Add(at + ".port", $"{port.Port}/{Output.Format.Protocol(port.Protocol)} is listed twice");
            if (port.TargetCase == ServicePort.TargetOneofCase.TargetPortNumber) PortNumber(at + ".target_port_number", port.TargetPortNumber);
            if (port.TargetCase == ServicePort.TargetOneofCase.TargetPortName) PortName(at + ".target_port_name", port.TargetPortName);
        }
        if (spec.SessionAffinity == SessionAffinity.ClientIp && spec.SessionAffinityTimeoutSeconds > 86_400)
            Add("spec.session_affinity_timeout_seconds", $"{spec.SessionAffinityTimeoutSeconds} is more than 86400");
        if (spec.SessionAffinity != SessionAffinity.ClientIp && spec.SessionAffinityTimeoutSeconds != 0)
            Add("spec.session_affinity_timeout_seconds", "is only allowed with CLIENT_IP affinity");
    }

    private void Families(ServiceSpec spec)
    {
        if (spec.IpFamilyPolicy.Length > 0 && spec.IpFamilyPolicy is not ("SingleStack" or "PreferDualStack" or "RequireDualStack"))
            Add("spec.ip_family_policy", $"'{spec.IpFamilyPolicy}' is not SingleStack, PreferDualStack or RequireDualStack");
        if (spec.IpFamilies.Count > 2) Add("spec.ip_families", "names more than two families");
        for (var i = 0; i < spec.IpFamilies.Count; i++)
        {
            if (spec.IpFamilies[i] is not ("IPv4" or "IPv6")) Add($"spec.ip_families[{i}]", $"'{spec.IpFamilies[i]}' is not IPv4 or IPv6");
            else if (spec.IpFamilies.IndexOf(spec.IpFamilies[i]) != i) Add($"spec.ip_families[{i}]", $"{spec.IpFamilies[i]} is listed twice");
        }
        if (spec.IpFamilies.Count == 2 && spec.IpFamilyPolicy is "" or "SingleStack")
            Add("spec.ip_families", "names two families but spec.ip_family_policy is SingleStack (the default)");
        if (spec.ClusterIps.Count > 2) Add("spec.cluster_ips", "names more than two addresses");
        var families = new HashSet<AddressFamily>();
        for (var i = 0; i < spec.ClusterIps.Count; i++)
        {
            if (Host($"spec.cluster_ips[{i}]", spec.ClusterIps[i]) is not { } address) continue;
            var family = address.AddressFamily == AddressFamily.InterNetwork ? "IPv4" : "IPv6";
            if (!families.Add(address.AddressFamily)) Add($"spec.cluster_ips[{i}]", $"asks for a second {family} address");
            else if (i < spec.IpFamilies.Count && spec.IpFamilies[i] != family) Add($"spec.cluster_ips[{i}]", $"{address} is not of family {spec.IpFamilies[i]} (spec.ip_families[{i}])");
        }
    }

    /// <summary>A peer's silo addresses: 1 to 16, each one address (no comma lists) a client can dial.</summary>
    private void Peer(ClusterPeerSpec? spec)
    {
        if (!RequireSpec(spec)) return;
        if (spec!.Addresses.Count == 0) Add("spec.addresses", "names no silo address (http://host:port, https://host:port or unix:/path)");
        if (spec.Addresses.Count > 16) Add("spec.addresses", $"names {spec.Addresses.Count} addresses (at most 16)");
        for (var i = 0; i < spec.Addresses.Count; i++)
        {
            var address = spec.Addresses[i];
            if (ControlPlaneChannel.PeerAddressProblem(address) is { } problem)
                Add($"spec.addresses[{i}]", $"'{address}' {problem}");
            else if (spec.Addresses.IndexOf(address) != i)
                Add($"spec.addresses[{i}]", $"'{address}' is listed twice");
        }
    }

    private void Policy(NetworkPolicySpec? spec)
    {
        if (!RequireSpec(spec)) return;
        Selector("spec.pod_selector", spec!.PodSelector);
        for (var i = 0; i < spec.PolicyTypes.Count; i++)
        {
            if (spec.PolicyTypes[i] is not ("Ingress" or "Egress")) Add($"spec.policy_types[{i}]", $"'{spec.PolicyTypes[i]}' is not Ingress or Egress");
            else if (spec.PolicyTypes.IndexOf(spec.PolicyTypes[i]) != i) Add($"spec.policy_types[{i}]", $"'{spec.PolicyTypes[i]}' is listed twice");
        }
        Rules("spec.ingress", spec.Ingress);
        Rules("spec.egress", spec.Egress);
    }

    private void Rules(string field, IList<NetworkPolicyRule> rules)
    {
        for (var r = 0; r < rules.Count; r++)
        {
            for (var p = 0; p < rules[r].Peers.Count; p++) Peer($"{field}[{r}].peers[{p}]", rules[r].Peers[p]);
            for (var p = 0; p < rules[r].Ports.Count; p++) PolicyPort($"{field}[{r}].ports[{p}]", rules[r].Ports[p]);
        }
    }

    private void Peer(string at, NetworkPolicyPeer peer)
    {
        var selectors = peer.PodSelector is not null || peer.NamespaceSelector is not null;
        if (peer.IpBlock is null && !selectors) Add(at, "must set pod_selector, namespace_selector or ip_block");
        if (peer.IpBlock is not null && selectors) Add(at + ".ip_block", "cannot be combined with pod_selector or namespace_selector");
        if (peer.PodSelector is not null) Selector(at + ".pod_selector", peer.PodSelector);
        if (peer.NamespaceSelector is not null) Selector(at + ".namespace_selector", peer.NamespaceSelector);
        if (peer.IpBlock is not { } block) return;
        if (block.Cidr.Length == 0)
        {
            Add(at + ".ip_block.cidr", "is required");
            return;
        }
        var cidr = Prefix(at + ".ip_block.cidr", block.Cidr, masked: true);
        for (var e = 0; e < block.Except.Count; e++)
        {
            var except = Prefix($"{at}.ip_block.except[{e}]", block.Except[e], masked: true);
            if (cidr is { } outer && except is { } inner && Contracts.Policy.AddressRange.ExceptProblem(outer.ToString(), inner.ToString()) is { } problem)
            {
                Add($"{at}.ip_block.except[{e}]", problem);
            }
        }
    }

    private void PolicyPort(string at, NetworkPolicyPort port)
    {
        switch (port.PortCase)
        {
            case NetworkPolicyPort.PortOneofCase.Number:
                PortNumber(at + ".number", port.Number, given: true);
                if (port.EndPort != 0 && (port.EndPort < port.Number || port.EndPort > 65535)) Add(at + ".end_port", $"{port.EndPort} must lie between {port.Number} and 65535");
                break;
            case NetworkPolicyPort.PortOneofCase.Name:
                PortName(at + ".name", port.Name);
                if (port.EndPort != 0) Add(at + ".end_port", "requires a numeric port");
                break;
            default:
                if (port.EndPort != 0) Add(at + ".end_port", "requires a numeric port");
                break;
        }
    }

    private void Selector(string field, LabelSelector? selector)
    {
        if (selector is null) return;
        Labels(field + ".match_labels", selector.MatchLabels);
        for (var i = 0; i < selector.MatchExpressions.Count; i++)
        {
            var expression = selector.MatchExpressions[i];
            var at = $"{field}.match_expressions[{i}]";
            if (NameRules.LabelKey(expression.Key) is { } keyError) Add(at + ".key", keyError);
            switch (expression.Operator)
            {
                case "In" or "NotIn":
                    if (expression.Values.Count == 0) Add(at + ".values", $"must not be empty for operator {expression.Operator}");
                    foreach (var value in expression.Values)
                    {
                        if (NameRules.LabelValue(value) is { } valueError) Add(at + ".values", valueError);
                    }
                    break;
                case "Exists" or "DoesNotExist":
                    if (expression.Values.Count != 0) Add(at + ".values", $"must be empty for operator {expression.Operator}");
                    break;
                default:
                    Add(at + ".operator", $"'{expression.Operator}' is not one of In, NotIn, Exists, DoesNotExist");
                    break;
            }
        }
    }

    private void PortName(string field, string name)
    {
        if (NameRules.PortName(name) is { } error) Add(field, name.Length == 0 ? "is required" : error);
    }

    /// <param name="given">The port was set (a oneof's case): 0 is then a value outside the range, not a missing one.</param>
    private void PortNumber(string field, uint port, bool given = false)
    {
        if (port is 0 or > 65535) Add(field, port == 0 && !given ? "is required (1..65535)" : $"{port} is outside 1..65535");
    }
}
