using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.Policy;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Table;

namespace ControlPlane.NodeAgent.Services;

/// <summary>
/// The agent's nftables layout for service virtual IPs, in one table ("controlplane", family inet).
/// Every chain and rule is static; everything that changes with services and endpoints is an
/// element of a named map, so neither the load of the whole table nor one change costs more as
/// services grow (kube-proxy's chain per service with an anonymous numgen map costs the kernel
/// more per map as the table grows).
/// <code>
/// nat_pre (prerouting, dstnat):
///     dnat to (saddr . daddr . l4proto . dport) map @affF     a client's remembered endpoint (affinity)
///     daddr . l4proto . dport  vmap @svcF   (F = 4 | 6)      → goto lb_N
/// lb_N:   dnat to (daddr . l4proto . dport . numgen random mod N) map @beF        (one chain per endpoint count)
/// nat_post (postrouting, srcnat), first packet of each connection:
///     ct status dnat, (ct original daddr . l4proto . ct original dport) vmap @affsvcF → jump aff_T:
///     update @affF { saddr . original daddr . l4proto . original dport timeout T : daddr . dport }
///     (a new entry remembers where the client went; an existing one only has its timeout renewed)
/// reject_pre (prerouting, filter, before dstnat; every packet to a VIP):
///     daddr @vipF, iifname != "cpe*"                 drop    (the underlay, the overlay: no network's endpoint)
///     daddr @vipF, daddr . saddr != @vipsrcF        drop    (an endpoint of another network)
///     daddr . l4proto . dport @noepF                 → TCP reset / ICMP port unreachable
/// unserved_pre (prerouting, filter, right after dstnat):
///     daddr @vipF  → TCP reset / ICMP port unreachable    (still the VIP: a port the service does not serve)
///     saddr . daddr @hairpinF → masquerade (an endpoint reaching itself);
///     from an endpoint interface out of any non-overlay, non-endpoint interface → masquerade
/// </code>
/// A packet's network is its source address, which source_pre (<see cref="Policy.PolicyRuleset"/>)
/// has already checked against the endpoint veth it came from: a VIP serves only packets from an
/// endpoint's veth whose source lies in the VIP's network (an import's: any network's range), and
/// drops everything else addressed to it before any translation or reject, so another network
/// and the underlay see a VIP exactly like an address that does not exist. Behind that, routing
/// keeps networks apart as well: each network's routing table holds an unreachable route for
/// every network's CIDR. Every chain is readable with `nft list table inet controlplane`.
/// </summary>
public static class ServiceRuleset
{
    /// <summary>The service part of the agent's table: its sets and base chains.</summary>
    public static (List<NftSetSpec> Sets, List<NftChainSpec> Chains) Schema()
    {
        var sets = new List<NftSetSpec>();
        foreach (var f in FamilyLayout.Both)
        {
            var a = (uint)f.AddressBytes;
            sets.Add(new(f.Dispatch, Nft.SetMap, Nft.Concat(f.AddressType, Nft.TypeInetProto, Nft.TypeInetService), a + 8, Nft.DataTypeVerdict));
            sets.Add(new(f.Backends, Nft.SetMap, Nft.Concat(f.AddressType, Nft.TypeInetProto, Nft.TypeInetService, Nft.TypeMark), a + 12,
                Nft.Concat(f.AddressType, Nft.TypeInetService), a + 4));
            sets.Add(new(f.Affinity, Nft.SetMap | Nft.SetTimeout | Nft.SetEval, Nft.Concat(f.AddressType, f.AddressType, Nft.TypeInetProto, Nft.TypeInetService), 2 * a + 8,
                Nft.Concat(f.AddressType, Nft.TypeInetService), a + 4));
            sets.Add(new(f.AffinityServices, Nft.SetMap, Nft.Concat(f.AddressType, Nft.TypeInetProto, Nft.TypeInetService), a + 8, Nft.DataTypeVerdict));
            sets.Add(new(f.NoEndpoints, 0, Nft.Concat(f.AddressType, Nft.TypeInetProto, Nft.TypeInetService), a + 8));
            sets.Add(new(f.Hairpin, 0, Nft.Concat(f.AddressType, f.AddressType), 2 * a));
            sets.Add(new(f.Vips, 0, f.AddressType, a));
            sets.Add(new(f.VipSources, Nft.SetInterval | Nft.SetConcat, Nft.Concat(f.AddressType, f.AddressType), 2 * a, FieldLengths: [a, a]));
        }

        var dispatch = new List<NftRule>();
        var reject = new List<NftRule>();
        var unserved = new List<NftRule>();
        var post = new List<NftRule>();
        foreach (var f in FamilyLayout.Both)
        {
            var n = f.AddressRegisters;
            dispatch.Add(Family(f)
                .Payload(RuleBuilder.BaseNetwork, f.SourceOffset, (uint)f.AddressBytes, 0)
                .Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, n)
                .Meta(RuleBuilder.MetaL4Proto, 2 * n).Payload(RuleBuilder.BaseTransport, 2, 2, 2 * n + 1)
                .Lookup(f.Affinity, 0, destinationRegister: 10).Dnat(f.NfProto, 10, 10 + n)
                .Build(Tag("sticky v" + f.Suffix)));
            dispatch.Add(ServicePort(Family(f), f).Lookup(f.Dispatch, 0, verdict: true)
                .Build(Tag("dispatch v" + f.Suffix)));
            // Not from the VIP's own network: dropped, as an address that does not exist (no
            // translation, no reject that would tell another network the VIP is there).
            reject.Add(Family(f).Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, 0).Lookup(f.Vips, 0)
                .Meta(RuleBuilder.MetaIifName, 0).CmpName(0, RuleBuilder.CmpNeq, Dataplane.Names.EndpointPrefix + "*")
                .Verdict(new NftVerdict(Nft.Drop)).Build(Tag("vip not from an endpoint v" + f.Suffix)));
            reject.Add(Family(f)
                .Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, 0)
                .Payload(RuleBuilder.BaseNetwork, f.SourceOffset, (uint)f.AddressBytes, n)
                .Lookup(f.Vips, 0).Lookup(f.VipSources, 0, invert: true)
                .Verdict(new NftVerdict(Nft.Drop)).Build(Tag("vip of another network v" + f.Suffix)));
            reject.Add(ServicePort(Family(f), f).Lookup(f.NoEndpoints, 0).CmpByte(n, RuleBuilder.CmpEq, PolicySemantics.Tcp)
                .Reject(RuleBuilder.RejectTcpRst).Build(Tag("no endpoints tcp v" + f.Suffix)));
            reject.Add(ServicePort(Family(f), f).Lookup(f.NoEndpoints, 0)
                .Reject(RuleBuilder.RejectIcmpxUnreach, RuleBuilder.IcmpxPortUnreach).Build(Tag("no endpoints v" + f.Suffix)));
            // After dstnat, a packet still addressed to a VIP was not translated: a port the VIP
            // does not serve. Refused at once (kube-proxy), rather than routed nowhere. (A lookup
            // of svcF here is not possible: the kernel checks a verdict map's gotos against every
            // chain that looks it up, and lb_N's dnat belongs in a nat chain.)
            unserved.Add(Family(f).Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, 0).Lookup(f.Vips, 0)
                .Meta(RuleBuilder.MetaL4Proto, 0).CmpByte(0, RuleBuilder.CmpEq, PolicySemantics.Tcp)
                .Reject(RuleBuilder.RejectTcpRst).Build(Tag("unserved port tcp v" + f.Suffix)));
            unserved.Add(Family(f).Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, 0).Lookup(f.Vips, 0)
                .Reject(RuleBuilder.RejectIcmpxUnreach, RuleBuilder.IcmpxPortUnreach).Build(Tag("unserved port v" + f.Suffix)));
            post.Add(Family(f)
                .Ct(RuleBuilder.CtStatus, 0).And(0, RuleBuilder.CtStatusDnat).Cmp(0, RuleBuilder.CmpNeq, new byte[4])
                .Ct(f.AddressBytes == 4 ? RuleBuilder.CtDstIp : RuleBuilder.CtDstIp6, 0, direction: 0)
                .Meta(RuleBuilder.MetaL4Proto, n).Ct(RuleBuilder.CtProtoDst, n + 1, direction: 0)
                .Lookup(f.AffinityServices, 0, verdict: true)
                .Build(Tag("remember v" + f.Suffix)));
            post.Add(Family(f)
                .Payload(RuleBuilder.BaseNetwork, f.SourceOffset, (uint)f.AddressBytes, 0)
                .Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, n)
                .Lookup(f.Hairpin, 0).Masquerade().Build(Tag("hairpin v" + f.Suffix)));
        }
        post.Add(new RuleBuilder()
            .Meta(RuleBuilder.MetaIifName, 0).CmpName(0, RuleBuilder.CmpEq, Dataplane.Names.EndpointPrefix + "*")
            .Meta(RuleBuilder.MetaOifName, 0).CmpName(0, RuleBuilder.CmpNeq, Dataplane.Names.EndpointPrefix + "*")
            .CmpName(0, RuleBuilder.CmpNeq, Dataplane.Names.OverlayPrefix + "*")
            .Masquerade().Build(Tag("egress")));

        var chains = new List<NftChainSpec>
        {
            new("reject_pre", new NftHook(Nft.HookPrerouting, -150, "filter"), reject),
            new("nat_pre", new NftHook(Nft.HookPrerouting, -100, "nat"), dispatch),
            new("unserved_pre", new NftHook(Nft.HookPrerouting, -99, "filter"), unserved),
            new("nat_post", new NftHook(Nft.HookPostrouting, 100, "nat"), post),
        };
        return (sets, chains);
    }

    /// <summary>The chain that spreads over <paramref name="count"/> endpoints.</summary>
    public static string BalancerChain(int count) => $"lb_{count}";

    /// <summary>The chain that remembers clients' endpoints for <paramref name="seconds"/>.</summary>
    public static string AffinityChain(uint seconds) => $"aff_{seconds}";

    /// <summary>A chain named by <see cref="BalancerChain"/> or <see cref="AffinityChain"/>, one rule per family.</summary>
    public static NftChainSpec DataChain(string name)
    {
        var rules = new List<NftRule>();
        var parameter = uint.Parse(name[(name.IndexOf('_') + 1)..], System.Globalization.CultureInfo.InvariantCulture);
        foreach (var f in FamilyLayout.Both)
        {
            var n = f.AddressRegisters;
            if (name.StartsWith("lb_", StringComparison.Ordinal))
            {
                // daddr . l4proto . dport . slot → the endpoint (address . port), into registers 10.. .
                rules.Add(ServicePort(Family(f), f).RandomNumber(parameter, 2 + n).Lookup(f.Backends, 0, destinationRegister: 10)
                    .Dnat(f.NfProto, 10, 10 + n).Build(Tag($"balance v{f.Suffix}")));
            }
            else
            {
                rules.Add(Family(f)
                    .Payload(RuleBuilder.BaseNetwork, f.SourceOffset, (uint)f.AddressBytes, 0)
                    .Ct(f.AddressBytes == 4 ? RuleBuilder.CtDstIp : RuleBuilder.CtDstIp6, n, direction: 0)
                    .Meta(RuleBuilder.MetaL4Proto, 2 * n).Ct(RuleBuilder.CtProtoDst, 2 * n + 1, direction: 0)
                    .Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, 10)
                    .Payload(RuleBuilder.BaseTransport, 2, 2, 10 + n)
                    .DynamicSet(f.Affinity, RuleBuilder.DynsetUpdate, 0, 10, parameter * 1000UL)
                    .Build(Tag($"remember v{f.Suffix}")));
            }
        }
        return new NftChainSpec(name, null, rules);
    }

    private static RuleBuilder Family(FamilyLayout f) => f.Match();

    /// <summary>daddr . l4proto . dport into registers 0.. .</summary>
    private static RuleBuilder ServicePort(RuleBuilder b, FamilyLayout f) => b
        .Payload(RuleBuilder.BaseNetwork, f.DestinationOffset, (uint)f.AddressBytes, 0)
        .Meta(RuleBuilder.MetaL4Proto, f.AddressRegisters)
        .Payload(RuleBuilder.BaseTransport, 2, 2, f.AddressRegisters + 1);

    private static string Tag(string name) => name;

    // ---- element encodings (each concatenated field padded to 4 bytes; numbers in register byte order)

    public static byte[] ServicePortKey(IPAddress vip, byte protocol, ushort port)
    {
        var key = new byte[Width(vip) + 8];
        WritePort(key, vip, protocol, port);
        return key;
    }

    public static byte[] BackendKey(IPAddress vip, byte protocol, ushort port, int slot)
    {
        var key = new byte[Width(vip) + 12];
        WritePort(key, vip, protocol, port);
        BinaryPrimitives.WriteUInt32LittleEndian(key.AsSpan(Width(vip) + 8), (uint)slot);
        return key;
    }

    public static byte[] Backend(IPAddress address, ushort port)
    {
        var value = new byte[Width(address) + 4];
        address.TryWriteBytes(value, out _);
        BinaryPrimitives.WriteUInt16BigEndian(value.AsSpan(Width(address)), port);
        return value;
    }

    public static byte[] VipKey(IPAddress vip) => vip.GetAddressBytes();

    /// <summary>An element of the VIP's sources: VIP . first address of the range, to VIP . its last.</summary>
    public static NftElement VipSource(IPAddress vip, AddressRange sources)
    {
        var w = Width(vip);
        var start = new byte[2 * w];
        var end = new byte[2 * w];
        vip.TryWriteBytes(start, out _);
        vip.TryWriteBytes(end, out _);
        sources.Write(sources.First, start.AsSpan(w));
        sources.Write(sources.Last, end.AsSpan(w));
        return new NftElement(start, KeyEnd: end);
    }

    public static byte[] HairpinKey(IPAddress endpoint)
    {
        var key = new byte[2 * Width(endpoint)];
        endpoint.TryWriteBytes(key, out _);
        endpoint.TryWriteBytes(key.AsSpan(Width(endpoint)), out _);
        return key;
    }

    /// <summary>Whether an affinity entry (client . vip . proto . port → endpoint) belongs to this service port and endpoint.</summary>
    public static bool AffinityMatches(in NftElement entry, byte[] servicePortKey, byte[] backend)
    {
        var width = (servicePortKey.Length - 8);
        return entry.Key.Length == width + servicePortKey.Length
            && entry.Key.AsSpan(width).SequenceEqual(servicePortKey)
            && entry.Data is { } data && data.AsSpan().SequenceEqual(backend);
    }

    private static int Width(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? 4 : 16;

    private static void WritePort(Span<byte> span, IPAddress address, byte protocol, ushort port)
    {
        address.TryWriteBytes(span, out _);
        var w = Width(address);
        span[w] = protocol;
        BinaryPrimitives.WriteUInt16BigEndian(span[(w + 4)..], port);
    }
}
