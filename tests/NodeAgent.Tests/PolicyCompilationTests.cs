using System.Net;
using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using ControlPlane.NodeAgent.Policy;
using ControlPlane.NodeAgent.Table;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// The pure policy compilation: disjoint allow-list entries, incremental maintenance equal to a
/// rebuild, and the compiled allow-lists deciding every connection exactly as the explain
/// evaluation (written separately, straight from the semantics) does.
/// </summary>
public sealed class PolicyCompilationTests
{
    [Fact]
    public void Normalize_GivesDisjointEntries_CoveringExactlyTheUnion()
    {
        var random = new Random(7);
        for (var round = 0; round < 300; round++)
        {
            var boxes = Enumerable.Range(0, random.Next(1, 7)).Select(_ =>
            {
                int a = random.Next(16), b = random.Next(16), p = random.Next(4), q = random.Next(4), s = random.Next(8), t = random.Next(8);
                return new AllowBox((UInt128)Math.Min(a, b), (UInt128)Math.Max(a, b), (byte)Math.Min(p, q), (byte)Math.Max(p, q), (ushort)Math.Min(s, t), (ushort)Math.Max(s, t));
            }).ToList();
            var original = boxes.ToList();
            var normalized = AllowList.Normalize(boxes, v6: false);
            for (var address = 0; address < 16; address++)
            for (var protocol = 0; protocol < 4; protocol++)
            for (var port = 0; port < 8; port++)
            {
                bool In(AllowBox b) => b.AddressFirst <= (UInt128)address && b.AddressLast >= (UInt128)address && b.ProtocolFirst <= protocol && b.ProtocolLast >= protocol && b.PortFirst <= port && b.PortLast >= port;
                Assert.Equal(original.Any(In), normalized.Any(In));
                Assert.True(normalized.Count(In) <= 1, $"overlapping entries at {address}/{protocol}/{port}: {string.Join(", ", normalized)}");
            }
        }
    }

    [Fact]
    public void Normalize_JoinsNeighbours_WithTheSamePorts()
    {
        var boxes = new List<AllowBox>
        {
            new(10, 10, 6, 6, 80, 80), new(11, 11, 6, 6, 80, 80), new(12, 12, 6, 6, 80, 81), new(12, 12, 6, 6, 81, 82),
        };
        Assert.Equal([new AllowBox(10, 11, 6, 6, 80, 80), new AllowBox(12, 12, 6, 6, 80, 82)], AllowList.Normalize(boxes, v6: false));
    }

    [Fact]
    public void IpBlock_WithoutExcepts_IsTheRangesBetweenThem()
    {
        var ranges = PolicySemantics.BlockRanges(new IPBlock { Cidr = "10.0.0.0/8", Except = { "10.1.0.0/16", "10.0.0.0/24", "10.255.255.255/32" } });
        Assert.Equal(["10.0.1.0-10.0.255.255", "10.2.0.0-10.255.255.254"], ranges.Select(r => r.ToString()));
        var v6 = PolicySemantics.BlockRanges(new IPBlock { Cidr = "fd00::/64", Except = { "fd00::/65" } });
        Assert.Equal(["fd00::8000:0:0:0-fd00::ffff:ffff:ffff:ffff"], v6.Select(r => r.ToString()));
    }

    /// <summary>The whole of each family (a /0), with and without holes: ::/0 is every IPv6 address, not only ::.</summary>
    [Theory]
    [InlineData("::/0", new string[0], new[] { "::-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" })]
    [InlineData("::/0", new[] { "fd00:47::40/122" }, new[] { "::-fd00:47::3f", "fd00:47::80-ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff" })]
    [InlineData("::/0", new[] { "::/1", "8000::/1" }, new string[0])]
    [InlineData("0.0.0.0/0", new string[0], new[] { "0.0.0.0-255.255.255.255" })]
    [InlineData("0.0.0.0/0", new[] { "10.0.0.0/8" }, new[] { "0.0.0.0-9.255.255.255", "11.0.0.0-255.255.255.255" })]
    public void IpBlock_OfAWholeFamily_CoversIt(string cidr, string[] except, string[] expected)
    {
        var block = new IPBlock { Cidr = cidr };
        block.Except.Add(except);
        Assert.Equal(expected, PolicySemantics.BlockRanges(block).Select(r => r.ToString()));
        var all = AddressRange.ParseCidr(cidr)!.Value;
        Assert.True(all.Contains(System.Net.IPAddress.Parse(all.V6 ? "fd00:47::2" : "10.47.0.2")));
    }

    [Fact]
    public void Incremental_Changes_GiveWhatARebuildGives_AndAgreeWithExplain()
    {
        var random = new Random(11);
        var world = new World(random);
        var incremental = new PolicyIndex("n1", 10_000);
        incremental.Reset(world.Endpoints.Values, world.Policies.Values, world.Namespaces.Values);
        var programmed = new Dictionary<string, ElementGroup>();
        Take(incremental, programmed);
        for (var step = 0; step < 400; step++)
        {
            world.Mutate(incremental);
            Take(incremental, programmed);
            var rebuilt = new PolicyIndex("n1", 10_000);
            rebuilt.Reset(world.Endpoints.Values, world.Policies.Values, world.Namespaces.Values);
            var expected = new Dictionary<string, ElementGroup>();
            Take(rebuilt, expected);
            Assert.Equal(Describe(expected), Describe(programmed));
            if (step % 10 == 0) world.AssertAgreesWithExplain(programmed);
        }
    }

    [Fact]
    public void A_Port_Of_An_Unknown_Protocol_AllowsNothing()
    {
        var port = new NetworkPolicyPort { Protocol = (Protocol)9, Number = 80 };
        Assert.Null(PolicySemantics.Resolve(port, null));
        Assert.Equal(new PortRange(PolicySemantics.Sctp, 80, 90), PolicySemantics.Resolve(new NetworkPolicyPort { Protocol = Protocol.Sctp, Number = 80, EndPort = 90 }, null));
        Assert.Equal(new PortRange(PolicySemantics.Tcp, 0, 65535), PolicySemantics.Resolve(new NetworkPolicyPort(), null));
    }

    [Fact]
    public void A_Peers_NamedPort_Change_ReRendersTheEndpointsReachingIt()
    {
        Endpoint Pod(string name, string node, uint web) => new()
        {
            Metadata = new ObjectMeta { Namespace = "x", Name = name, Labels = { ["app"] = name } },
            Spec = new EndpointSpec { Node = node, Ports = { new NamedPort { Name = "web", Protocol = Protocol.Tcp, Port = web } } },
            Status = new EndpointStatus { Ips = { name == "client" ? "10.0.0.1" : "10.0.0.2" } },
        };
        var policy = new NetworkPolicy
        {
            Metadata = new ObjectMeta { Namespace = "x", Name = "out" },
            Spec = new NetworkPolicySpec
            {
                PodSelector = new LabelSelector { MatchLabels = { ["app"] = "client" } },
                PolicyTypes = { "Egress" },
                Egress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchLabels = { ["app"] = "server" } } } }, Ports = { new NetworkPolicyPort { Name = "web" } } } },
            },
        };
        var index = new PolicyIndex("n1", 100);
        index.Reset([Pod("client", "n1", 80), Pod("server", "n2", 8080)], [policy], []);
        var before = index.TakeChanges().Single();
        index.UpdateEndpoint("x/server", Pod("server", "n2", 9090));
        var after = index.TakeChanges().Single();
        Assert.Equal(before.Key, after.Key);
        var entry = after.Group.Elements.Single(e => e.Set == PolicyRuleset.Exact(FamilyLayout.V4, PolicyDirection.Egress)).Element.Key;
        Assert.Equal(9090, entry[12] << 8 | entry[13]);
    }

    /// <summary>
    /// Networks never reach each other, so a selector that also picks endpoints of other networks
    /// (a namespaceSelector across namespaces) gives them no entries, and they do not count
    /// against the node's entry limit.
    /// </summary>
    [Fact]
    public void Peers_OnOtherNetworks_GetNoEntries_AndDoNotCountAgainstTheLimit()
    {
        Endpoint Pod(string name, string network, string ip, string app) => new()
        {
            Metadata = new ObjectMeta { Namespace = "x", Name = name, Labels = { ["app"] = app } },
            Spec = new EndpointSpec { Node = "n1", Network = network },
            Status = new EndpointStatus { Ips = { ip } },
        };
        var policy = new NetworkPolicy
        {
            Metadata = new ObjectMeta { Namespace = "x", Name = "in" },
            Spec = new NetworkPolicySpec
            {
                PodSelector = new LabelSelector { MatchLabels = { ["app"] = "server" } },
                Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { NamespaceSelector = new LabelSelector(), PodSelector = new LabelSelector { MatchLabels = { ["app"] = "client" } } } }, Ports = { new NetworkPolicyPort { Number = 80 } } } },
            },
        };
        // Two entries: the blue client and the server itself. The green client would make three.
        var index = new PolicyIndex("n1", 2);
        index.Reset([Pod("server", "blue", "10.0.0.2", "server"), Pod("client", "blue", "10.0.0.3", "client"), Pod("other", "green", "10.1.0.3", "client")], [policy], []);

        Assert.Empty(index.Problems);
        var peers = index.TakeChanges().Single(c => c.Key == PolicyIndex.GroupPrefix + "x/server").Group.Elements
            .Where(e => e.Set != PolicyRuleset.Isolated(FamilyLayout.V4, PolicyDirection.Ingress))
            .Select(e => new IPAddress(e.Element.Key.AsSpan(4, 4)).ToString()).Order().ToList();
        Assert.Equal(["10.0.0.2", "10.0.0.3"], peers);
    }

    private static void Take(PolicyIndex index, Dictionary<string, ElementGroup> programmed)
    {
        foreach (var (key, group) in index.TakeChanges())
        {
            if (group.Elements.Count == 0) programmed.Remove(key);
            else programmed[key] = group;
        }
    }

    private static List<string> Describe(Dictionary<string, ElementGroup> groups) =>
        groups.SelectMany(g => g.Value.Elements.Select(e => $"{g.Key} {e.Set} {Convert.ToHexString(e.Element.Key)}-{Convert.ToHexString(e.Element.KeyEnd ?? [])}")).Order().ToList();

    /// <summary>A small random cluster: 3 namespaces, up to 14 IPv4 endpoints on nodes n1/n2 and networks blue/green, policies drawn from a pool of shapes.</summary>
    private sealed class World(Random random)
    {
        private static readonly string[] Ns = ["x", "y", "z"];
        private static readonly string[] Values = ["a", "b", "c"];
        private int _next;

        public Dictionary<string, Namespace> Namespaces { get; } = Ns.ToDictionary(n => n, n => new Namespace { Metadata = new ObjectMeta { Name = n, Labels = { ["team"] = n == "z" ? "red" : "blue" } } });
        public Dictionary<string, Endpoint> Endpoints { get; } = [];
        public Dictionary<string, NetworkPolicy> Policies { get; } = [];

        public void Mutate(PolicyIndex index)
        {
            switch (random.Next(6))
            {
                case 0 or 1 when Endpoints.Count < 14:
                    var endpoint = NewEndpoint();
                    Endpoints[PolicySemantics.KeyOf(endpoint.Metadata)] = endpoint;
                    index.UpdateEndpoint(PolicySemantics.KeyOf(endpoint.Metadata), endpoint);
                    break;
                case 0 or 1 or 2 when Endpoints.Count > 0:
                    var key = Endpoints.Keys.ElementAt(random.Next(Endpoints.Count));
                    if (random.Next(4) == 0)
                    {
                        Endpoints.Remove(key);
                        index.UpdateEndpoint(key, null);
                        break;
                    }
                    var changed = Endpoints[key].Clone();
                    if (random.Next(2) == 0) changed.Metadata.Labels["app"] = Values[random.Next(3)];
                    else changed.Spec.Ports[0].Port = (uint)random.Next(80, 83);
                    Endpoints[key] = changed;
                    index.UpdateEndpoint(key, changed);
                    break;
                case 3:
                    var ns = Namespaces[Ns[random.Next(3)]].Clone();
                    ns.Metadata.Labels["team"] = random.Next(2) == 0 ? "red" : "blue";
                    Namespaces[ns.Metadata.Name] = ns;
                    index.UpdateNamespace(ns.Metadata.Name, ns);
                    break;
                default:
                    var name = $"p{random.Next(5)}";
                    var policyNs = Ns[random.Next(3)];
                    var policyKey = $"{policyNs}/{name}";
                    var policy = random.Next(4) == 0 ? null : NewPolicy(policyNs, name);
                    if (policy is null) Policies.Remove(policyKey);
                    else Policies[policyKey] = policy;
                    index.UpdatePolicy(policyKey, policy);
                    break;
            }
        }

        private Endpoint NewEndpoint()
        {
            var n = _next++;
            return new Endpoint
            {
                Metadata = new ObjectMeta { Namespace = Ns[n % 3], Name = $"e{n}", Labels = { ["app"] = Values[random.Next(3)] } },
                Spec = new EndpointSpec { Node = random.Next(2) == 0 ? "n1" : "n2", Network = random.Next(4) == 0 ? "green" : "blue", Ports = { new NamedPort { Name = "web", Protocol = Protocol.Tcp, Port = 80 } } },
                Status = new EndpointStatus { Ips = { $"10.0.{n / 4}.{n % 4 * 2 + 1}" } },
            };
        }

        private NetworkPolicy NewPolicy(string ns, string name)
        {
            var spec = new NetworkPolicySpec { PodSelector = Selector("app") };
            if (random.Next(3) == 0) spec.PolicyTypes.Add(random.Next(2) == 0 ? ["Egress"] : ["Ingress", "Egress"]);
            for (var r = random.Next(0, 3); r > 0; r--) spec.Ingress.Add(NewRule());
            for (var r = random.Next(0, 3); r > 0; r--) spec.Egress.Add(NewRule());
            return new NetworkPolicy { Metadata = new ObjectMeta { Namespace = ns, Name = name }, Spec = spec };
        }

        private NetworkPolicyRule NewRule()
        {
            var rule = new NetworkPolicyRule();
            for (var p = random.Next(0, 3); p > 0; p--)
            {
                rule.Peers.Add(random.Next(4) switch
                {
                    0 => new NetworkPolicyPeer { PodSelector = Selector("app") },
                    1 => new NetworkPolicyPeer { NamespaceSelector = new LabelSelector { MatchLabels = { ["team"] = "red" } } },
                    2 => new NetworkPolicyPeer { NamespaceSelector = new LabelSelector { MatchLabels = { ["team"] = "blue" } }, PodSelector = Selector("app") },
                    _ => new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = "10.0.0.0/22", Except = { "10.0.1.0/24" } } },
                });
            }
            for (var p = random.Next(0, 3); p > 0; p--)
            {
                rule.Ports.Add(random.Next(4) switch
                {
                    0 => new NetworkPolicyPort { Protocol = Protocol.Tcp, Number = 80 },
                    1 => new NetworkPolicyPort { Protocol = Protocol.Tcp, Number = 80, EndPort = 81 },
                    2 => new NetworkPolicyPort { Protocol = Protocol.Tcp, Name = "web" },
                    _ => new NetworkPolicyPort { Protocol = Protocol.Udp },
                });
            }
            return rule;
        }

        private LabelSelector Selector(string key) => random.Next(3) == 0
            ? new LabelSelector()
            : new LabelSelector { MatchExpressions = { new LabelSelectorRequirement { Key = key, Operator = "In", Values = { Values[random.Next(3)], Values[random.Next(3)] } } } };

        /// <summary>For every pair with a local end and a few ports: allowed by the compiled elements of node n1 exactly when explain says so.</summary>
        public void AssertAgreesWithExplain(Dictionary<string, ElementGroup> programmed)
        {
            var labels = Namespaces.ToDictionary(n => n.Key, n => PolicySemantics.NamespaceLabels(n.Key, n.Value));
            foreach (var source in Endpoints.Values)
            foreach (var destination in Endpoints.Values)
            {
                // Endpoints of two networks exchange no packets for the allow-lists to judge.
                if (source == destination || source.Spec.Network != destination.Spec.Network) continue;
                foreach (var (protocol, port) in new (byte, ushort)[] { (6, 80), (6, 81), (6, 82), (17, 80) })
                {
                    var explained = PolicyExplainer.Explain(
                        new ExplainSubject(source, IPAddress.Parse(source.Status.Ips[0]), labels[source.Metadata.Namespace]),
                        new ExplainSubject(destination, IPAddress.Parse(destination.Status.Ips[0]), labels[destination.Metadata.Namespace]),
                        protocol, port, Policies.Values, Policies.Values);
                    if (source.Spec.Node == "n1")
                    {
                        Assert.True(explained.Egress.Allowed == Allows(programmed, source, destination, PolicyDirection.Egress, protocol, port),
                            $"egress {PolicySemantics.KeyOf(source.Metadata)} -> {PolicySemantics.KeyOf(destination.Metadata)} {protocol}/{port}: explain {explained.Reason}");
                    }
                    if (destination.Spec.Node == "n1")
                    {
                        Assert.True(explained.Ingress.Allowed == Allows(programmed, destination, source, PolicyDirection.Ingress, protocol, port),
                            $"ingress {PolicySemantics.KeyOf(source.Metadata)} -> {PolicySemantics.KeyOf(destination.Metadata)} {protocol}/{port}: explain {explained.Reason}");
                    }
                }
            }
        }

        /// <summary>What the kernel would decide from the elements: not isolated, or an entry (point or range) covering the packet.</summary>
        private static bool Allows(Dictionary<string, ElementGroup> programmed, Endpoint local, Endpoint peer, PolicyDirection direction, byte protocol, ushort port)
        {
            var f = FamilyLayout.V4;
            if (!programmed.TryGetValue(PolicyIndex.GroupPrefix + PolicySemantics.KeyOf(local.Metadata), out var group)) return true;
            if (!group.Elements.Any(e => e.Set == PolicyRuleset.Isolated(f, direction))) return true;
            var packet = new byte[16];
            IPAddress.Parse(local.Status.Ips[0]).TryWriteBytes(packet, out _);
            IPAddress.Parse(peer.Status.Ips[0]).TryWriteBytes(packet.AsSpan(4), out _);
            packet[8] = protocol;
            packet[12] = (byte)(port >> 8);
            packet[13] = (byte)port;
            return group.Elements.Any(e =>
                (e.Set == PolicyRuleset.Exact(f, direction) && e.Element.Key.AsSpan().SequenceEqual(packet)) ||
                (e.Set.StartsWith(PolicyRuleset.Ranges(f, direction, 0)[..^1], StringComparison.Ordinal) && Within(packet, e.Element.Key, e.Element.KeyEnd!)));
        }

        private static bool Within(byte[] packet, byte[] start, byte[] end)
        {
            foreach (var (offset, length) in new[] { (0, 4), (4, 4), (8, 1), (12, 2) })
            {
                var p = packet.AsSpan(offset, length);
                if (p.SequenceCompareTo(start.AsSpan(offset, length)) < 0 || p.SequenceCompareTo(end.AsSpan(offset, length)) > 0) return false;
            }
            return true;
        }
    }
}
