using ControlPlane.Contracts.Policy;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Table;

namespace ControlPlane.NodeAgent.Policy;

/// <summary>
/// The network-policy part of the agent's table. Every chain and rule is static; which endpoints
/// are isolated and what they may exchange are elements (F = 4 | 6, D = ing | egr, k = shard):
/// <code>
/// source_pre (prerouting, filter, before the services' reject_pre):
///     iifname "cpe*" fib saddr . iif oif 0 drop            an endpoint's packet whose source is not its own
/// policy_fwd (forward, filter):
///     ct state established,related accept                 replies of allowed connections
///     saddr vmap @egr_isoF                                 a local endpoint selected for egress: jump egressF_k
///     daddr vmap @ing_isoF                                 a local endpoint selected for ingress: jump ingressF_k
/// egressF_k:  saddr . daddr . l4proto . th dport @egr_exactF    return
///             saddr . daddr . l4proto . th dport @egr_rangeF_k  return
///             drop
/// ingressF_k: daddr . saddr . l4proto . th dport @ing_exactF    accept
///             daddr . saddr . l4proto . th dport @ing_rangeF_k  accept
///             drop
/// </code>
/// An allow-list entry is (local endpoint . peer . protocol . port). Entries that are single
/// points go to a hash set (D_exactF) and ranges (ip blocks, port ranges, whole protocols) to an
/// interval set (pipapo). Hash insertions and deletions cost the kernel a fraction of interval
/// ones, and an interval set's deletion costs grow with its size, so ranges are spread over up to
/// <see cref="Shards"/> sets by local address: the isolation map sends each endpoint to its
/// shard's chain. A shard's chain and set are created with the first endpoint that needs them, so
/// the count of chains and sets is bounded and does not grow with endpoints or rules.
/// Isolation is per local endpoint: only the node that hosts an endpoint filters its traffic, so
/// a connection is checked once for egress (source's node) and once for ingress (destination's
/// node), on the same node or across the overlay. The forward hook sees service traffic after
/// DNAT, so policies apply to endpoint addresses and ports. Traffic the node itself originates
/// or receives does not pass the forward hook (Kubernetes leaves it open too).
/// </summary>
public static class PolicyRuleset
{
    public const string ForwardChain = "policy_fwd";

    /// <summary>The prerouting chain that drops an endpoint's packets with a source it does not hold.</summary>
    public const string SourceChain = "source_pre";

    /// <summary>Interval sets (and chains) per family and direction.</summary>
    public const int Shards = 128;

    /// <summary>
    /// In the order of the forward chain's checks. Egress first: its chains return when allowed, so
    /// the ingress check still runs; an ingress chain accepts, which ends the base chain (traffic
    /// between two endpoints of one node meets both).
    /// </summary>
    private static readonly PolicyDirection[] Directions = [PolicyDirection.Egress, PolicyDirection.Ingress];

    public static (List<NftSetSpec> Sets, List<NftChainSpec> Chains) Schema()
    {
        var sets = new List<NftSetSpec>();
        // Before anything else sees the packet (an established flow's entry, a service's reject,
        // the node's own sockets): a packet from an endpoint's veth must carry an address that is
        // routed back through that veth, its own. At prerouting, so it covers traffic to the node
        // (gateway, VTEP, underlay, node-local DNS) as well as forwarded traffic; one rule for both
        // families (fib in an inet table looks up in the packet's).
        var source = new List<NftRule>
        {
            new RuleBuilder().Meta(RuleBuilder.MetaIifName, 0).CmpName(0, RuleBuilder.CmpEq, Dataplane.Names.EndpointPrefix + "*")
                .Fib(RuleBuilder.FibSourceAddress | RuleBuilder.FibInputInterface, RuleBuilder.FibResultOutputInterface, 0)
                .Cmp(0, RuleBuilder.CmpEq, new byte[4]).Verdict(new NftVerdict(Nft.Drop)).Build("spoofed source"),
        };
        var forward = new List<NftRule>
        {
            new RuleBuilder().Ct(RuleBuilder.CtState, 0).And(0, RuleBuilder.CtStateEstablished | RuleBuilder.CtStateRelated)
                .Cmp(0, RuleBuilder.CmpNeq, new byte[4]).Verdict(new NftVerdict(Nft.Accept)).Build("replies"),
        };
        foreach (var f in FamilyLayout.Both)
        {
            var a = (uint)f.AddressBytes;
            foreach (var d in Directions)
            {
                var local = d == PolicyDirection.Egress ? f.SourceOffset : f.DestinationOffset;
                sets.Add(new(Isolated(f, d), Nft.SetMap, f.AddressType, a, Nft.DataTypeVerdict));
                sets.Add(new(Exact(f, d), 0, EntryType(f), 2 * a + 8));
                forward.Add(f.Match().Payload(RuleBuilder.BaseNetwork, local, a, 0).Lookup(Isolated(f, d), 0, verdict: true)
                    .Build($"{d.ToString().ToLowerInvariant()} isolated v{f.Suffix}"));
            }
        }
        return (sets,
        [
            new NftChainSpec(SourceChain, new NftHook(Nft.HookPrerouting, -160, "filter"), source),
            new NftChainSpec(ForwardChain, new NftHook(Nft.HookForward, 0, "filter"), forward),
        ]);
    }

    private static uint EntryType(FamilyLayout f) => Nft.Concat(f.AddressType, f.AddressType, Nft.TypeInetProto, Nft.TypeInetService);

    /// <summary>Whether <paramref name="name"/> is a shard chain (see <see cref="Chain"/>).</summary>
    public static bool IsShardChain(string name) => name.StartsWith("ingress", StringComparison.Ordinal) || name.StartsWith("egress", StringComparison.Ordinal);

    /// <summary>
    /// A shard's chain, with its interval set: created when the first endpoint of the shard is
    /// isolated, so an idle table holds none (`nft list` stays short).
    /// </summary>
    public static NftChainSpec ShardChain(string name)
    {
        var d = name.StartsWith("ingress", StringComparison.Ordinal) ? PolicyDirection.Ingress : PolicyDirection.Egress;
        var rest = name[(d == PolicyDirection.Ingress ? "ingress" : "egress").Length..];
        var f = rest[0] == '6' ? FamilyLayout.V6 : FamilyLayout.V4;
        var shard = int.Parse(rest[2..], System.Globalization.CultureInfo.InvariantCulture);
        var a = (uint)f.AddressBytes;
        var egress = d == PolicyDirection.Egress;
        var (local, peer) = egress ? (f.SourceOffset, f.DestinationOffset) : (f.DestinationOffset, f.SourceOffset);
        var allowed = new NftVerdict(egress ? Nft.Return : Nft.Accept);
        return new NftChainSpec(name, null,
        [
            Entry(f, local, peer).Lookup(Exact(f, d), 0).Verdict(allowed).Build("allowed"),
            Entry(f, local, peer).Lookup(Ranges(f, d, shard), 0).Verdict(allowed).Build("allowed range"),
            new RuleBuilder().Verdict(new NftVerdict(Nft.Drop)).Build("denied"),
        ], [new NftSetSpec(Ranges(f, d, shard), Nft.SetInterval | Nft.SetConcat, EntryType(f), 2 * a + 8, FieldLengths: [a, a, 1, 2])]);
    }

    /// <summary>local . peer . l4proto . th dport into registers 0.. (after a family match, which also lets `nft` print the fields by name).</summary>
    private static RuleBuilder Entry(FamilyLayout f, uint localOffset, uint peerOffset)
    {
        var n = f.AddressRegisters;
        return f.Match()
            .Payload(RuleBuilder.BaseNetwork, localOffset, (uint)f.AddressBytes, 0)
            .Payload(RuleBuilder.BaseNetwork, peerOffset, (uint)f.AddressBytes, n)
            .Meta(RuleBuilder.MetaL4Proto, 2 * n)
            .Payload(RuleBuilder.BaseTransport, 2, 2, 2 * n + 1);
    }

    private static string Prefix(PolicyDirection d) => d == PolicyDirection.Ingress ? "ing" : "egr";

    /// <summary>The map of isolated local endpoints (address → jump to the endpoint's shard chain).</summary>
    public static string Isolated(FamilyLayout f, PolicyDirection d) => $"{Prefix(d)}_iso{f.Suffix}";

    public static string Exact(FamilyLayout f, PolicyDirection d) => $"{Prefix(d)}_exact{f.Suffix}";

    public static string Ranges(FamilyLayout f, PolicyDirection d, int shard) => $"{Prefix(d)}_range{f.Suffix}_{shard}";

    public static string Chain(FamilyLayout f, PolicyDirection d, int shard) => $"{(d == PolicyDirection.Ingress ? "ingress" : "egress")}{f.Suffix}_{shard}";

    /// <summary>Whether a set belongs to the policy part (isolation maps, exact sets, shard sets).</summary>
    public static bool IsPolicySet(string name) => name.StartsWith("ing_", StringComparison.Ordinal) || name.StartsWith("egr_", StringComparison.Ordinal);

    /// <summary>The shard of a local address (stable: derived from the address alone).</summary>
    public static int Shard(AddressRange local) => (int)(local.First % Shards);

    private static readonly HashSet<string> IsolationMaps =
        FamilyLayout.Both.SelectMany(f => Directions.Select(d => Isolated(f, d))).ToHashSet(StringComparer.Ordinal);

    /// <summary>A policy group reduced to its isolation elements: the endpoint closed, nothing allowed.</summary>
    public static ElementGroup Closed(ElementGroup group) => new(group.Elements.Where(e => IsolationMaps.Contains(e.Set)).ToList(), group.Chains, []);

    /// <summary>An isolation element: the local address, jumping to its shard's chain.</summary>
    public static NftElement IsolationEntry(AddressRange local, PolicyDirection d)
    {
        var key = new byte[local.V6 ? 16 : 4];
        local.Write(local.First, key);
        return new NftElement(key, Verdict: NftVerdict.JumpChain(Chain(local.V6 ? FamilyLayout.V6 : FamilyLayout.V4, d, Shard(local))));
    }

    /// <summary>An allow-list element and its set: local . peer . protocol . port, a point (exact set) or (with its end) a range.</summary>
    public static (string Set, NftElement Element) Entry(AddressRange local, PolicyDirection d, AllowBox box)
    {
        var f = local.V6 ? FamilyLayout.V6 : FamilyLayout.V4;
        var start = EntryKey(local.First, box.AddressFirst, box.ProtocolFirst, box.PortFirst, local);
        if (box.IsPoint) return (Exact(f, d), new NftElement(start));
        return (Ranges(f, d, Shard(local)), new NftElement(start, KeyEnd: EntryKey(local.First, box.AddressLast, box.ProtocolLast, box.PortLast, local)));
    }

    private static byte[] EntryKey(UInt128 local, UInt128 peer, byte protocol, ushort port, AddressRange family)
    {
        var a = family.V6 ? 16 : 4;
        var key = new byte[2 * a + 8];
        family.Write(local, key);
        family.Write(peer, key.AsSpan(a));
        key[2 * a] = protocol;
        key[2 * a + 4] = (byte)(port >> 8);
        key[2 * a + 5] = (byte)port;
        return key;
    }
}
