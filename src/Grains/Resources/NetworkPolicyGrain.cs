using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Grains.State;
using ControlPlane.Grains.Validation;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>A NetworkPolicy, validated with the Kubernetes API's rules (enforcement lives in the node agents).</summary>
[GrainType(Kinds.NetworkPolicy)]
internal sealed class NetworkPolicyGrain(ObjectServices services) : ResourceGrain<NetworkPolicy>(services), INetworkPolicyGrain
{
    protected override bool Namespaced => true;

    protected override ObjectMeta MetaOf(NetworkPolicy resource) => resource.Metadata ??= new ObjectMeta();

    protected override IReadOnlyList<(string Kind, string Key)> References(NetworkPolicy state) => [(Kinds.Namespace, state.Metadata.Namespace)];

    protected override void Validate(NetworkPolicy resource)
    {
        var spec = resource.Spec ?? throw ControlPlaneException.Invalid("spec", "is required");
        Selectors.Validate("spec.pod_selector", spec.PodSelector ??= new LabelSelector());
        var types = new HashSet<string>();
        for (var i = 0; i < spec.PolicyTypes.Count; i++)
        {
            if (spec.PolicyTypes[i] is not ("Ingress" or "Egress"))
                throw ControlPlaneException.Invalid($"spec.policy_types[{i}]", $"'{spec.PolicyTypes[i]}' is not Ingress or Egress");
            if (!types.Add(spec.PolicyTypes[i]))
                throw ControlPlaneException.Invalid($"spec.policy_types[{i}]", $"'{spec.PolicyTypes[i]}' is listed twice");
        }
        ValidateRules("spec.ingress", spec.Ingress);
        ValidateRules("spec.egress", spec.Egress);
    }

    private static void ValidateRules(string field, IList<NetworkPolicyRule> rules)
    {
        for (var r = 0; r < rules.Count; r++)
        {
            var rule = rules[r];
            for (var p = 0; p < rule.Peers.Count; p++)
            {
                ValidatePeer($"{field}[{r}].peers[{p}]", rule.Peers[p]);
            }
            for (var p = 0; p < rule.Ports.Count; p++)
            {
                ValidatePort($"{field}[{r}].ports[{p}]", rule.Ports[p]);
            }
        }
    }

    private static void ValidatePeer(string at, NetworkPolicyPeer peer)
    {
        var selectors = peer.PodSelector is not null || peer.NamespaceSelector is not null;
        if (peer.IpBlock is null && !selectors)
            throw ControlPlaneException.Invalid(at, "must set pod_selector, namespace_selector or ip_block");
        if (peer.IpBlock is not null && selectors)
            throw ControlPlaneException.Invalid(at + ".ip_block", "cannot be combined with pod_selector or namespace_selector");
        if (peer.PodSelector is not null) Selectors.Validate(at + ".pod_selector", peer.PodSelector);
        if (peer.NamespaceSelector is not null) Selectors.Validate(at + ".namespace_selector", peer.NamespaceSelector);
        if (peer.IpBlock is { } block)
        {
            // Host bits are ignored, as Kubernetes does (the agents match the masked range).
            var cidr = AddressInput.ParseMaskedPrefix(at + ".ip_block.cidr", block.Cidr);
            for (var e = 0; e < block.Except.Count; e++)
            {
                var except = AddressInput.ParseMaskedPrefix($"{at}.ip_block.except[{e}]", block.Except[e]);
                if (Contracts.Policy.AddressRange.ExceptProblem(cidr.ToString(), except.ToString()) is { } problem)
                    throw ControlPlaneException.Invalid($"{at}.ip_block.except[{e}]", problem);
            }
        }
    }

    private static void ValidatePort(string at, NetworkPolicyPort port)
    {
        Ports.RequireProtocol(at + ".protocol", port.Protocol);
        switch (port.PortCase)
        {
            case NetworkPolicyPort.PortOneofCase.Number:
                Ports.RequireNumber(at + ".number", port.Number);
                if (port.EndPort != 0 && (port.EndPort < port.Number || port.EndPort > 65535))
                    throw ControlPlaneException.Invalid(at + ".end_port", $"{port.EndPort} must lie between {port.Number} and 65535");
                break;
            case NetworkPolicyPort.PortOneofCase.Name:
                Ports.RequireName(at + ".name", port.Name);
                if (port.EndPort != 0) throw ControlPlaneException.Invalid(at + ".end_port", "requires a numeric port");
                break;
            default:
                if (port.EndPort != 0) throw ControlPlaneException.Invalid(at + ".end_port", "requires a numeric port");
                break;
        }
    }

    protected override NetworkPolicy Merge(NetworkPolicy current, NetworkPolicy requested)
    {
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        current.Spec = requested.Spec;
        return current;
    }
}
