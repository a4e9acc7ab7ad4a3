using ControlPlane.Contracts.Policy;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Table;

namespace ControlPlane.NodeAgent.Policy;

/// <summary>
/// The network-policy part of the agent's table. Every chain and rule is static; which endpoints
/// are isolated and what they may exchange are elements of six sets per family:
/// <code>
/// policy_fwd (forward, filter):
///     ct state established,related accept                 replies of allowed connections
///     saddr @egr_isoF  jump egressF                        a local endpoint selected for egress
///     daddr @ing_isoF  jump ingressF                       a local endpoint selected for ingress
/// egressF:   saddr . daddr . l4proto . th dport @egr_exactF return
///            saddr . daddr . l4proto . th dport @egr_rangeF return
///            drop
/// ingressF:  daddr . saddr . l4proto . th dport @ing_exactF accept
///            daddr . saddr . l4proto . th dport @ing_rangeF accept
///            drop
/// </code>
/// An allow-list entry is (local endpoint . peer . protocol . port). Entries that are single
/// points go to a hash set (egr_exact/ing_exact) and ranges (ip blocks, port ranges, whole
/// protocols) to an interval set (pipapo): hash insertions cost the kernel a fraction of interval
/// ones, and one set per kind keeps the table's size from growing with endpoints or rules.
/// Isolation is per local endpoint: only the node that hosts an endpoint filters its traffic, so
/// a connection is checked once for egress (source's node) and once for ingress (destination's
/// node), on the same node or across the overlay. The forward hook sees service traffic after
/// DNAT, so policies apply to endpoint addresses and ports. Traffic the node itself originates
/// or receives does not pass the forward hook (Kubernetes leaves it open too).
/// </summary>
public static class PolicyRuleset
{
    public const string ForwardChain = "policy_fwd";

    public static (List<NftSetSpec> Sets, List<NftChainSpec> Chains) Schema()
    {
        var sets = new List<NftSetSpec>();
        var forward = new List<NftRule>
        {
            new RuleBuilder().Ct(RuleBuilder.CtState, 0).And(0, RuleBuilder.CtStateEstablished | RuleBuilder.CtStateRelated)
                .Cmp(0, RuleBuilder.CmpNeq, new byte[4]).Verdict(new NftVerdict(Nft.Accept)).Build("replies"),
        };
        var chains = new List<NftChainSpec>();
        foreach (var f in FamilyLayout.Both)
        {
            var a = (uint)f.AddressBytes;
            var entry = Nft.Concat(f.AddressType, f.AddressType, Nft.TypeInetProto, Nft.TypeInetService);
            sets.Add(new(f.IngressIsolated, 0, f.AddressType, a));
            sets.Add(new(f.EgressIsolated, 0, f.AddressType, a));
            sets.Add(new(f.IngressExact, 0, entry, 2 * a + 8));
            sets.Add(new(f.EgressExact, 0, entry, 2 * a + 8));
            sets.Add(new(f.IngressRanges, Nft.SetInterval | Nft.SetConcat, entry, 2 * a + 8, FieldLengths: [a, a, 1, 2]));
            sets.Add(new(f.EgressRanges, Nft.SetInterval | Nft.SetConcat, entry, 2 * a + 8, FieldLengths: [a, a, 1, 2]));

            forward.Add(f.Match().Payload(RuleBuilder.BaseNetwork, f.SourceOffset, a, 0).Lookup(f.EgressIsolated, 0)
                .Verdict(NftVerdict.JumpChain(f.EgressChain)).Build("egress isolated v" + f.Suffix));
            forward.Add(f.Match().Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, a, 0).Lookup(f.IngressIsolated, 0)
                .Verdict(NftVerdict.JumpChain(f.IngressChain)).Build("ingress isolated v" + f.Suffix));

            chains.Add(new NftChainSpec(f.EgressChain, null,
            [
                Entry(f, f.SourceOffset, f.DestinationOffset).Lookup(f.EgressExact, 0).Verdict(new NftVerdict(Nft.Return)).Build("allowed"),
                Entry(f, f.SourceOffset, f.DestinationOffset).Lookup(f.EgressRanges, 0).Verdict(new NftVerdict(Nft.Return)).Build("allowed range"),
                new RuleBuilder().Verdict(new NftVerdict(Nft.Drop)).Build("denied"),
            ]));
            chains.Add(new NftChainSpec(f.IngressChain, null,
            [
                Entry(f, f.DestinationOffset, f.SourceOffset).Lookup(f.IngressExact, 0).Verdict(new NftVerdict(Nft.Accept)).Build("allowed"),
                Entry(f, f.DestinationOffset, f.SourceOffset).Lookup(f.IngressRanges, 0).Verdict(new NftVerdict(Nft.Accept)).Build("allowed range"),
                new RuleBuilder().Verdict(new NftVerdict(Nft.Drop)).Build("denied"),
            ]));
        }
        chains.Insert(0, new NftChainSpec(ForwardChain, new NftHook(Nft.HookForward, 0, "filter"), forward));
        return (sets, chains);
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

    private static readonly HashSet<string> IsolationSets =
        FamilyLayout.Both.SelectMany(f => new[] { f.IngressIsolated, f.EgressIsolated }).ToHashSet(StringComparer.Ordinal);

    /// <summary>A policy group reduced to its isolation elements: the endpoint closed, nothing allowed.</summary>
    public static ElementGroup Closed(ElementGroup group) => new(group.Elements.Where(e => IsolationSets.Contains(e.Set)).ToList(), [], []);

    public static string IsolatedSet(FamilyLayout f, PolicyDirection d) => d == PolicyDirection.Ingress ? f.IngressIsolated : f.EgressIsolated;

    public static string ExactSet(FamilyLayout f, PolicyDirection d) => d == PolicyDirection.Ingress ? f.IngressExact : f.EgressExact;

    public static string RangeSet(FamilyLayout f, PolicyDirection d) => d == PolicyDirection.Ingress ? f.IngressRanges : f.EgressRanges;

    /// <summary>An isolation element: the local address.</summary>
    public static byte[] AddressKey(AddressRange local, UInt128 address)
    {
        var key = new byte[local.V6 ? 16 : 4];
        local.Write(address, key);
        return key;
    }

    /// <summary>An allow-list element: local . peer . protocol . port, a point or (with its end) a range.</summary>
    public static NftElement Entry(AddressRange local, AllowBox box)
    {
        var start = EntryKey(local.First, box.AddressFirst, box.ProtocolFirst, box.PortFirst, local);
        if (box.IsPoint) return new NftElement(start);
        return new NftElement(start, KeyEnd: EntryKey(local.First, box.AddressLast, box.ProtocolLast, box.PortLast, local));
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
