using System.Diagnostics;
using ControlPlane.Contracts.V1;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// NetworkPolicy truth tables: each case installs policies and asserts the whole reachability
/// matrix (9 pods × 8 peers × TCP 80, TCP 81, UDP 80) twice — by real probes between the pods'
/// namespaces on three hosts, and by the control plane's explain call. Expected matrices are
/// written by hand from the Kubernetes NetworkPolicy reference, not computed by the code under test.
/// </summary>
[Collection("policy")]
public sealed class PolicyTruthTableTests(PolicyCluster bed)
{
    private static readonly TimeSpan Settle = TimeSpan.FromSeconds(10);

    /// <summary>A case: the policies to install, the expected matrix, and extra (source, address, protocol, port, expected) probes.</summary>
    public sealed record Case(
        Func<PolicyCluster, IEnumerable<NetworkPolicy>> Policies,
        Func<PolicyPod, PolicyPod, ProbePort, bool> Expected,
        Func<PolicyCluster, IEnumerable<(PolicyPod From, string Ip, Protocol Protocol, int Port, bool Expected)>>? Extra = null);

    private static bool Is(PolicyPod p, string ns, string name) => p.Ns == ns && p.Name == name;

    public static readonly Dictionary<string, Case> Cases = new()
    {
        ["no policies: everything open"] = new(_ => [], (_, _, _) => true),
        ["default deny ingress in x"] = new(_ => [Policy("x", "deny", Select(), types: ["Ingress"])],
            (f, t, p) => t.Ns != "x"),
        ["default deny egress in x"] = new(_ => [Policy("x", "deny", Select(), types: ["Egress"])],
            (f, t, p) => f.Ns != "x"),
        ["default deny both ways in x"] = new(_ => [Policy("x", "deny", Select(), types: ["Ingress", "Egress"])],
            (f, t, p) => f.Ns != "x" && t.Ns != "x"),
        ["egress isolation holds where the destination's ingress allows, on the same node too"] = new(_ =>
            [
                Policy("x", "a-no-egress", Select("pod", "a"), types: ["Egress"]),
                Policy("x", "open", Select(), ingress: [Rule()]),
                Policy("y", "open", Select(), ingress: [Rule()]),
                Policy("z", "open", Select(), ingress: [Rule()]),
            ],
            (f, t, p) => !Is(f, "x", "a")),
        ["allow from the same namespace"] = new(_ => [Policy("x", "same", Select(), ingress: [Rule([Pods()])])],
            (f, t, p) => t.Ns != "x" || f.Ns == "x"),
        ["namespaceSelector"] = new(_ => [Policy("x", "a-from-y", Select("pod", "a"), ingress: [Rule([Namespaces("ns", "y")])])],
            (f, t, p) => !Is(t, "x", "a") || f.Ns == "y"),
        ["namespaceSelector on the implicit name label"] = new(_ => [Policy("x", "a-from-y", Select("pod", "a"), ingress: [Rule([Namespaces("kubernetes.io/metadata.name", "y")])])],
            (f, t, p) => !Is(t, "x", "a") || f.Ns == "y"),
        ["podSelector peer: the policy's namespace only"] = new(_ => [Policy("x", "a-from-b", Select("pod", "a"), ingress: [Rule([Pods("pod", "b")])])],
            (f, t, p) => !Is(t, "x", "a") || Is(f, "x", "b")),
        ["one peer with both selectors (AND)"] = new(_ => [Policy("x", "and", Select("pod", "a"), ingress: [Rule([Both("ns", "y", "pod", "b")])])],
            (f, t, p) => !Is(t, "x", "a") || Is(f, "y", "b")),
        ["two peers (OR)"] = new(_ => [Policy("x", "or", Select("pod", "a"), ingress: [Rule([Namespaces("ns", "y"), Pods("pod", "b")])])],
            (f, t, p) => !Is(t, "x", "a") || f.Ns == "y" || Is(f, "x", "b")),
        ["every namespace, some pods"] = new(_ => [Policy("x", "b-anywhere", Select("pod", "a"), ingress: [Rule([Both(null, null, "pod", "b")])])],
            (f, t, p) => !Is(t, "x", "a") || f.Name == "b"),
        ["ipBlock with except"] = new(bed => [Policy("x", "block", Select("pod", "a"), ingress: [Rule([Block("10.60.0.0/16", bed.Pod("y", "b").Ip + "/32")])])],
            (f, t, p) => !Is(t, "x", "a") || !Is(f, "y", "b")),
        // Written with host bits as Kubernetes' own e2e test writes it ("podIP/4" except "podIP/32"): the range is 0.0.0.0/4.
        ["egress to an ipBlock with host bits and an except"] = new(bed => [Policy("x", "block", Select("pod", "a"), types: ["Egress"], egress: [Rule([Block(bed.Pod("z", "c").Ip + "/4", bed.Pod("z", "c").Ip + "/32")])])],
            (f, t, p) => !Is(f, "x", "a") || !Is(t, "z", "c")),
        ["port by number"] = new(_ => [Policy("x", "tcp80", Select("pod", "a"), ingress: [Rule(ports: [Port(Protocol.Tcp, 80)])])],
            (f, t, p) => !Is(t, "x", "a") || p == ProbePort.Tcp80),
        ["UDP port"] = new(_ => [Policy("x", "udp80", Select("pod", "a"), ingress: [Rule(ports: [Port(Protocol.Udp, 80)])])],
            (f, t, p) => !Is(t, "x", "a") || p == ProbePort.Udp80),
        ["named port (resolved on the destination)"] = new(_ => [Policy("x", "named", Select("pod", "a"), ingress: [Rule(ports: [Named(Protocol.Tcp, "serve-81-tcp")])])],
            (f, t, p) => !Is(t, "x", "a") || p == ProbePort.Tcp81),
        ["endPort range"] = new(_ => [Policy("x", "range", Select("pod", "a"), ingress: [Rule(ports: [Port(Protocol.Tcp, 80, 81)])])],
            (f, t, p) => !Is(t, "x", "a") || p != ProbePort.Udp80),
        ["protocol without a port"] = new(_ => [Policy("x", "udp", Select("pod", "a"), ingress: [Rule(ports: [new NetworkPolicyPort { Protocol = Protocol.Udp }])])],
            (f, t, p) => !Is(t, "x", "a") || p == ProbePort.Udp80),
        ["egress only, to a pod"] = new(_ => [Policy("x", "a-to-b", Select("pod", "a"), types: ["Egress"], egress: [Rule([Pods("pod", "b")])])],
            (f, t, p) => !Is(f, "x", "a") || Is(t, "x", "b")),
        ["egress by port"] = new(_ => [Policy("x", "out81", Select("pod", "a"), types: ["Egress"], egress: [Rule(ports: [Port(Protocol.Tcp, 81)])])],
            (f, t, p) => !Is(f, "x", "a") || p == ProbePort.Tcp81),
        ["egress to a named port (resolved on each destination)"] = new(_ => [Policy("x", "out-named", Select("pod", "a"), types: ["Egress"], egress: [Rule([Namespaces("ns", "y")], [Named(Protocol.Udp, "serve-80-udp")])])],
            (f, t, p) => !Is(f, "x", "a") || (t.Ns == "y" && p == ProbePort.Udp80)),
        ["policyTypes absent: Ingress implied, Egress from egress rules"] = new(_ => [Policy("x", "implied", Select("pod", "a"), egress: [Rule([Namespaces("ns", "z")])])],
            (f, t, p) => !Is(t, "x", "a") && (!Is(f, "x", "a") || t.Ns == "z")),
        ["ingress and egress in one policy"] = new(_ => [Policy("x", "both", Select("pod", "a"), types: ["Ingress", "Egress"], ingress: [Rule([Namespaces("ns", "y")])], egress: [Rule([Namespaces("ns", "z")])])],
            (f, t, p) => (!Is(t, "x", "a") || f.Ns == "y") && (!Is(f, "x", "a") || t.Ns == "z")),
        ["several policies in union"] = new(_ =>
            [
                Policy("x", "from-y-80", Select("pod", "a"), ingress: [Rule([Namespaces("ns", "y")], [Port(Protocol.Tcp, 80)])]),
                Policy("x", "from-zc", Select("pod", "a"), ingress: [Rule([Both("ns", "z", "pod", "c")])]),
            ],
            (f, t, p) => !Is(t, "x", "a") || (f.Ns == "y" && p == ProbePort.Tcp80) || Is(f, "z", "c")),
        ["several rules in union"] = new(_ => [Policy("x", "rules", Select("pod", "a"), ingress:
            [
                Rule([Namespaces("ns", "y")], [Port(Protocol.Tcp, 80)]),
                Rule([Pods("pod", "c")], [Port(Protocol.Tcp, 81)]),
            ])],
            (f, t, p) => !Is(t, "x", "a") || (f.Ns == "y" && p == ProbePort.Tcp80) || (Is(f, "x", "c") && p == ProbePort.Tcp81)),
        ["matchExpressions select pods"] = new(_ => [Policy("x", "deny-ab", In("pod", "a", "b"), types: ["Ingress"])],
            (f, t, p) => t.Ns != "x" || t.Name == "c"),
        ["egress and ingress isolation meet"] = new(_ =>
            [
                Policy("y", "out-to-x", Select(), types: ["Egress"], egress: [Rule([Namespaces("ns", "x")])]),
                Policy("x", "in-from-z", Select(), ingress: [Rule([Namespaces("ns", "z")])]),
            ],
            (f, t, p) => (f.Ns != "y" || t.Ns == "x") && (t.Ns != "x" || f.Ns == "z")),
        ["egress to an outside address by ipBlock"] = new(_ => [Policy("x", "out", Select("pod", "a"), types: ["Egress"], egress: [Rule([Block(PolicyCluster.Outside + "/32")])])],
            (f, t, p) => !Is(f, "x", "a"),
            bed =>
            [
                (bed.Pod("x", "a"), PolicyCluster.Outside, Protocol.Tcp, 80, true),
                (bed.Pod("x", "a"), PolicyCluster.Outside, Protocol.Udp, 80, true),
                (bed.Pod("x", "b"), PolicyCluster.Outside, Protocol.Tcp, 80, true),
            ]),
        ["egress to everything outside the cluster except one address"] = new(_ => [Policy("x", "out", Select("pod", "a"), types: ["Egress"],
                egress: [Rule([Block("0.0.0.0/0", "10.60.0.0/16", PolicyCluster.Outside + "/32")])])],
            (f, t, p) => !Is(f, "x", "a"),
            bed =>
            [
                (bed.Pod("x", "a"), PolicyCluster.Outside, Protocol.Tcp, 80, false),
                (bed.Pod("y", "a"), PolicyCluster.Outside, Protocol.Tcp, 80, true),
            ]),
        ["egress to DNS only"] = new(_ => [Policy("x", "dns-only", Select(), types: ["Egress"], egress:
            [
                Rule([Both("ns", "z", "dns", "yes")], [Port(Protocol.Udp, 53), Port(Protocol.Tcp, 53)]),
            ])],
            (f, t, p) => f.Ns != "x",
            bed =>
            [
                (bed.Pod("x", "a"), bed.DnsVip, Protocol.Udp, 53, true),
                (bed.Pod("x", "b"), bed.DnsVip, Protocol.Tcp, 53, true),
                (bed.Pod("x", "c"), bed.Pod("z", "c").Ip, Protocol.Udp, 53, true),
                (bed.Pod("x", "a"), bed.Pod("z", "c").Ip, Protocol.Udp, 80, false),
                (bed.Pod("y", "a"), bed.DnsVip, Protocol.Udp, 53, true),
            ]),
    };

    public static IEnumerable<object[]> CaseNames => Cases.Keys.Select(k => new object[] { k });

    [Theory]
    [MemberData(nameof(CaseNames))]
    public async Task Reachability_matches_the_Kubernetes_semantics(string name)
    {
        var @case = Cases[name];
        await bed.ClearPoliciesAsync();
        foreach (var policy in @case.Policies(bed)) await bed.Cluster.Client.NetworkPolicies.CreateAsync(policy);

        var explained = await bed.ExplainMismatchesAsync(@case.Expected);
        Assert.True(explained.Count == 0, $"explain disagrees with the expected matrix:\n{string.Join('\n', explained)}");

        var wrong = await bed.ReachabilityAsync(@case.Expected, Settle);
        Assert.True(wrong.Count == 0,
            $"{wrong.Count} cells differ after {Settle.TotalSeconds} s ({string.Join(", ", wrong.Take(12).Select(w => $"{w.From}->{w.To} {w.Port} {(w.Observed ? "open" : "closed")}"))})\n" +
            $"expected (. open, X closed; T80 T81 U80):\n{bed.Matrix(@case.Expected)}\n{bed.Cluster.Ruleset(1)}");

        foreach (var (from, ip, protocol, port, expected) in @case.Extra?.Invoke(bed) ?? [])
        {
            var clock = Stopwatch.StartNew();
            bool observed;
            while ((observed = await PolicyCluster.ProbeAsync(from.Netns, ip, protocol, port)) != expected && clock.Elapsed < Settle) { }
            Assert.True(observed == expected, $"{from} -> {ip} {protocol}/{port}: expected {(expected ? "open" : "closed")}");
        }
    }

    /// <summary>Cases without ip blocks hold the same over IPv6 (one code path for both families), by probes and by explain on the IPv6 addresses.</summary>
    [Theory]
    [InlineData("default deny both ways in x")]
    [InlineData("egress isolation holds where the destination's ingress allows, on the same node too")]
    [InlineData("two peers (OR)")]
    [InlineData("several policies in union")]
    [InlineData("egress to a named port (resolved on each destination)")]
    [InlineData("endPort range")]
    public async Task Reachability_over_IPv6_matches_too(string name)
    {
        var @case = Cases[name];
        await bed.ClearPoliciesAsync();
        foreach (var policy in @case.Policies(bed)) await bed.Cluster.Client.NetworkPolicies.CreateAsync(policy);
        var explained = await bed.ExplainMismatchesAsync(@case.Expected, v6: true);
        Assert.True(explained.Count == 0, $"explain disagrees with the expected matrix:\n{string.Join('\n', explained)}");
        var wrong = await bed.ReachabilityAsync(@case.Expected, Settle, v6: true);
        Assert.True(wrong.Count == 0,
            $"{wrong.Count} cells differ over IPv6 ({string.Join(", ", wrong.Take(12).Select(w => $"{w.From}->{w.To} {w.Port} {(w.Observed ? "open" : "closed")}"))})\n" +
            $"expected:\n{bed.Matrix(@case.Expected)}");
    }

    [Fact]
    public void There_are_at_least_twenty_cases() => Assert.True(Cases.Count >= 20);

    // ---- policy builders

    internal static NetworkPolicy Policy(string ns, string name, LabelSelector select, string[]? types = null,
        NetworkPolicyRule[]? ingress = null, NetworkPolicyRule[]? egress = null)
    {
        var spec = new NetworkPolicySpec { PodSelector = select };
        spec.PolicyTypes.Add(types ?? []);
        spec.Ingress.Add(ingress ?? []);
        spec.Egress.Add(egress ?? []);
        return new NetworkPolicy { Metadata = new ObjectMeta { Namespace = ns, Name = name }, Spec = spec };
    }

    internal static LabelSelector Select(string? key = null, string? value = null)
    {
        var selector = new LabelSelector();
        if (key is not null) selector.MatchLabels[key] = value!;
        return selector;
    }

    private static LabelSelector In(string key, params string[] values) =>
        new() { MatchExpressions = { new LabelSelectorRequirement { Key = key, Operator = "In", Values = { values } } } };

    internal static NetworkPolicyRule Rule(NetworkPolicyPeer[]? peers = null, NetworkPolicyPort[]? ports = null)
    {
        var rule = new NetworkPolicyRule();
        rule.Peers.Add(peers ?? []);
        rule.Ports.Add(ports ?? []);
        return rule;
    }

    internal static NetworkPolicyPeer Pods(string? key = null, string? value = null) => new() { PodSelector = Select(key, value) };

    private static NetworkPolicyPeer Namespaces(string key, string value) => new() { NamespaceSelector = Select(key, value) };

    private static NetworkPolicyPeer Both(string? nsKey, string? nsValue, string podKey, string podValue) =>
        new() { NamespaceSelector = Select(nsKey, nsValue), PodSelector = Select(podKey, podValue) };

    internal static NetworkPolicyPeer Block(string cidr, params string[] except) => new() { IpBlock = new IPBlock { Cidr = cidr, Except = { except } } };

    private static NetworkPolicyPort Port(Protocol protocol, uint number, uint endPort = 0) => new() { Protocol = protocol, Number = number, EndPort = endPort };

    private static NetworkPolicyPort Named(Protocol protocol, string name) => new() { Protocol = protocol, Name = name };
}
