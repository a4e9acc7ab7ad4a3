using System.Net;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Policy;

/// <summary>
/// One side of a connection to explain: an endpoint (with its namespace's labels and, when known,
/// the addresses its node holds: the underlay address, and its VTEP and gateway addresses on the
/// endpoint's network, see <see cref="NodeAddresses"/>) or a bare address.
/// </summary>
public sealed record ExplainSubject(Endpoint? Endpoint, IPAddress Address, IReadOnlyDictionary<string, string>? NamespaceLabels, IReadOnlyCollection<IPAddress>? NodeAddresses = null)
{
    public string Describe() => Endpoint is null ? Address.ToString() : PolicySemantics.KeyOf(Endpoint.Metadata);
}

/// <summary>
/// Decides whether a connection is allowed by evaluating the policies directly (not through the
/// agents' compiled form): the source's egress and the destination's ingress must both allow it,
/// and two endpoints must be on the same network (networks never reach each other).
/// </summary>
public static class PolicyExplainer
{
    public static ExplainResponse Explain(ExplainSubject source, ExplainSubject destination, byte protocol, ushort port,
        IEnumerable<NetworkPolicy> sourcePolicies, IEnumerable<NetworkPolicy> destinationPolicies)
    {
        var egress = Side(PolicyDirection.Egress, source, destination, protocol, port, destination.Endpoint, sourcePolicies);
        var ingress = Side(PolicyDirection.Ingress, destination, source, protocol, port, destination.Endpoint, destinationPolicies);
        // With the addresses compared: a dual-stack endpoint is explained at one of its addresses.
        static string At(ExplainSubject subject) => subject.Endpoint is null ? subject.Describe() : $"{subject.Describe()} ({subject.Address})";
        var what = $"{PolicySemantics.ProtocolName(protocol)}/{port} from {At(source)} to {At(destination)}";
        string reason;
        if (source.Endpoint is { } s && destination.Endpoint is { } d && s.Spec.Network != d.Spec.Network)
        {
            // Not a policy matter: networks are isolated by routing, whatever the policies say.
            reason = $"denied: {what}: they are on different networks ({s.Spec.Network}, {d.Spec.Network}), which never reach each other";
            return new ExplainResponse { Allowed = false, Egress = egress, Ingress = ingress, Reason = reason };
        }
        if (IsSelf(source, destination))
        {
            // NetworkPolicy never stands between an endpoint and itself (the data path lets it through too).
            reason = $"allowed: {what}: an endpoint always reaches itself, whatever policies isolate it";
            return new ExplainResponse { Allowed = true, Egress = egress, Ingress = ingress, Reason = reason };
        }
        if (OwnNode(source, destination) is { } endpoint)
        {
            // As in Kubernetes: traffic between an endpoint and its own node is never filtered (the data path agrees).
            reason = $"allowed: {what}: {endpoint.Address} is on node {endpoint.Endpoint!.Spec.Node}, whose own traffic with its endpoints is not filtered";
            return new ExplainResponse { Allowed = true, Egress = egress, Ingress = ingress, Reason = reason };
        }
        if (!egress.Allowed) reason = $"denied: {what}: the egress of {source.Describe()} is isolated by {string.Join(", ", egress.Policies)} and no egress rule allows it";
        else if (!ingress.Allowed) reason = $"denied: {what}: the ingress of {destination.Describe()} is isolated by {string.Join(", ", ingress.Policies)} and no ingress rule allows it";
        else reason = $"allowed: {what}: egress {Describe(egress)}; ingress {Describe(ingress)}";
        return new ExplainResponse { Allowed = egress.Allowed && ingress.Allowed, Egress = egress, Ingress = ingress, Reason = reason };
    }

    /// <summary>The endpoint side when the other side is a bare address that its node holds (underlay, VTEP, gateway).</summary>
    private static ExplainSubject? OwnNode(ExplainSubject source, ExplainSubject destination) =>
        source.Endpoint is null && destination.NodeAddresses?.Contains(source.Address) == true ? destination
            : destination.Endpoint is null && source.NodeAddresses?.Contains(destination.Address) == true ? source
            : null;

    private static bool IsSelf(ExplainSubject source, ExplainSubject destination) =>
        source.Endpoint is { } s && destination.Endpoint is { } d
            ? PolicySemantics.KeyOf(s.Metadata) == PolicySemantics.KeyOf(d.Metadata)
            : source.Address.Equals(destination.Address);

    private static string Describe(DirectionVerdict verdict) => verdict.Isolated
        ? "by " + string.Join(", ", verdict.AllowedBy.Select(r => $"{r.Policy} rule {r.Rule}"))
        : "not isolated";

    private static DirectionVerdict Side(PolicyDirection direction, ExplainSubject self, ExplainSubject peer, byte protocol, ushort port,
        Endpoint? portOwner, IEnumerable<NetworkPolicy> policies)
    {
        var verdict = new DirectionVerdict();
        if (self.Endpoint is not { } endpoint)
        {
            verdict.Allowed = true;
            return verdict;
        }
        verdict.Endpoint = PolicySemantics.KeyOf(endpoint.Metadata);
        foreach (var policy in policies.Where(p => PolicySemantics.Affects(p.Spec, direction) && PolicySemantics.Selects(p, endpoint))
                     .OrderBy(p => PolicySemantics.KeyOf(p.Metadata), StringComparer.Ordinal))
        {
            var key = PolicySemantics.KeyOf(policy.Metadata);
            verdict.Isolated = true;
            verdict.Policies.Add(key);
            var rules = PolicySemantics.Rules(policy.Spec, direction);
            for (var i = 0; i < rules.Count; i++)
            {
                if (PolicySemantics.PeersAllow(rules[i], policy.Metadata.Namespace, peer.Endpoint, peer.Address, peer.NamespaceLabels)
                    && PolicySemantics.PortsAllow(rules[i], protocol, port, portOwner))
                {
                    verdict.AllowedBy.Add(new PolicyRuleRef { Policy = key, Rule = (uint)i });
                }
            }
        }
        verdict.Allowed = !verdict.Isolated || verdict.AllowedBy.Count > 0;
        return verdict;
    }
}
