using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Nftables;

/// <summary>
/// The connection tracking table over ctnetlink. UDP has no end of connection: a flow that was
/// translated to an endpoint keeps going there until its entry expires, so when an endpoint
/// leaves a service its entries are deleted and the next packet is balanced again.
/// </summary>
public static class Conntrack
{
    private const ushort SubsysConntrack = 1, MsgGet = 1, MsgDelete = 2;
    private const ushort FRequest = 1, FAck = 4, FDump = 0x300;
    private const ushort TupleOrig = 1, TupleReply = 2, TupleIp = 1, TupleProto = 2;
    private const ushort IpV4Src = 1, IpV4Dst = 2, IpV6Src = 3, IpV6Dst = 4, ProtoNum = 1, ProtoSrcPort = 2, ProtoDstPort = 3;

    /// <summary>
    /// Deletes the entries of flows to <paramref name="service"/>:<paramref name="servicePort"/>
    /// that were translated to <paramref name="endpoint"/>:<paramref name="endpointPort"/>. Returns how many.
    /// </summary>
    public static int DeleteTranslated(byte protocol, IPAddress service, ushort servicePort, IPAddress endpoint, ushort endpointPort) =>
        DeleteWhere(AddressFamilies.Of(service), (orig, reply) =>
            Matches(orig, protocol, destination: service, destinationPort: servicePort) && Matches(reply, protocol, source: endpoint, sourcePort: endpointPort));

    /// <summary>
    /// Deletes the entries of <paramref name="protocol"/> flows of an address family
    /// (<see cref="AddressFamilies"/>) that were translated (their reply comes from another
    /// address or port than the original destination) and that <paramref name="stale"/> picks,
    /// given (original destination, port, translated destination, port). Returns how many.
    /// </summary>
    public static int DeleteTranslatedWhere(byte family, byte protocol, Func<IPAddress, ushort, IPAddress, ushort, bool> stale) =>
        DeleteWhere(family, (orig, reply) =>
            Endpoint(orig, protocol, destination: true) is { } to && Endpoint(reply, protocol, destination: false) is { } from
            && !(to.Address.Equals(from.Address) && to.Port == from.Port) && stale(to.Address, to.Port, from.Address, from.Port));

    /// <summary>
    /// Deletes the entries of flows from or to any of <paramref name="addresses"/> (any protocol,
    /// either direction, translated or not): the workload that held them is gone, and a flow its
    /// policy let in must not carry on to the next holder of the address. Returns how many.
    /// </summary>
    public static int DeleteInvolving(IReadOnlySet<IPAddress> addresses)
    {
        var cleared = 0;
        foreach (var family in AddressFamilies.Both)
        {
            if (addresses.Any(a => AddressFamilies.Of(a) == family))
            {
                cleared += DeleteWhere(family, (orig, reply) => Involves(orig, addresses) || Involves(reply, addresses));
            }
        }
        return cleared;
    }

    private static bool Involves(ReadOnlySpan<byte> tuple, IReadOnlySet<IPAddress> addresses)
    {
        var t = new Attributes(tuple);
        if (!t.TryGet(TupleIp, out var ipNest)) return false;
        var ip = new Attributes(ipNest);
        foreach (var type in (ReadOnlySpan<ushort>)[IpV4Src, IpV4Dst, IpV6Src, IpV6Dst])
        {
            if (ip.TryGet(type, out var address) && addresses.Contains(new IPAddress(address))) return true;
        }
        return false;
    }

    private static int DeleteWhere(byte family, Func<ReadOnlySpan<byte>, ReadOnlySpan<byte>, bool> doomedIf)
    {
        using var socket = NetlinkSocket.Open(NetlinkSocket.NetlinkNetfilter);
        var request = new MessageWriter();
        var sequence = socket.NextSequence();
        request.BeginMessage((ushort)((SubsysConntrack << 8) | MsgGet), FRequest | FDump, sequence);
        Header(request, family);
        request.EndMessage();
        var doomed = new List<byte[]>();
        socket.Dump(request.Written, sequence, (_, payload) =>
        {
            if (payload.Length < 4) return;
            var a = new Attributes(payload[4..]);
            if (!a.TryGet(TupleOrig, out var orig) || !a.TryGet(TupleReply, out var reply)) return;
            if (doomedIf(orig, reply)) doomed.Add(orig.ToArray());
        });
        if (doomed.Count == 0) return 0;
        var batch = new MessageWriter();
        uint last = 0;
        foreach (var tuple in doomed)
        {
            last = socket.NextSequence();
            batch.BeginMessage((ushort)((SubsysConntrack << 8) | MsgDelete), (ushort)(FRequest | (tuple == doomed[^1] ? FAck : 0)), last);
            Header(batch, family);
            batch.Attribute(TupleOrig | MessageWriter.Nested, tuple);
            batch.EndMessage();
        }
        // An entry that expired meanwhile is fine.
        var failures = socket.Transact(batch.Written, last).Where(f => f.Errno != NetlinkException.ENOENT).ToList();
        if (failures.Count > 0) throw new NetlinkException(failures[0].Errno, "delete conntrack entry", failures[0].Reason);
        return doomed.Count;
    }

    private static bool Matches(ReadOnlySpan<byte> tuple, byte protocol, IPAddress? source = null, ushort sourcePort = 0, IPAddress? destination = null, ushort destinationPort = 0)
    {
        var t = new Attributes(tuple);
        if (!t.TryGet(TupleIp, out var ipNest) || !t.TryGet(TupleProto, out var protoNest)) return false;
        var ip = new Attributes(ipNest);
        var proto = new Attributes(protoNest);
        if (!proto.TryGet(ProtoNum, out var num) || num.Length < 1 || num[0] != protocol) return false;
        var v4 = (source ?? destination)!.AddressFamily == AddressFamily.InterNetwork;
        if (source is not null && !(ip.TryGet(v4 ? IpV4Src : IpV6Src, out var s) && source.Equals(new IPAddress(s)) && Port(proto, ProtoSrcPort) == sourcePort)) return false;
        if (destination is not null && !(ip.TryGet(v4 ? IpV4Dst : IpV6Dst, out var d) && destination.Equals(new IPAddress(d)) && Port(proto, ProtoDstPort) == destinationPort)) return false;
        return true;
    }

    /// <summary>A tuple's destination (or source) address and port, for the protocol given; null for another protocol.</summary>
    private static (IPAddress Address, ushort Port)? Endpoint(ReadOnlySpan<byte> tuple, byte protocol, bool destination)
    {
        var t = new Attributes(tuple);
        if (!t.TryGet(TupleIp, out var ipNest) || !t.TryGet(TupleProto, out var protoNest)) return null;
        var ip = new Attributes(ipNest);
        var proto = new Attributes(protoNest);
        if (!proto.TryGet(ProtoNum, out var num) || num.Length < 1 || num[0] != protocol) return null;
        if (!ip.TryGet(destination ? IpV4Dst : IpV4Src, out var address) && !ip.TryGet(destination ? IpV6Dst : IpV6Src, out address)) return null;
        return (new IPAddress(address), Port(proto, destination ? ProtoDstPort : ProtoSrcPort));
    }

    private static ushort Port(Attributes proto, ushort type) => proto.TryGet(type, out var p) && p.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(p) : (ushort)0;

    private static void Header(MessageWriter w, byte family)
    {
        var nfgen = w.Struct(4);
        nfgen[0] = family;
    }
}
