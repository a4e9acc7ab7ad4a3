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
            Read(orig) is { } o && o.Protocol == protocol && o.Destination.Equals(service) && o.DestinationPort == servicePort
            && Read(reply) is { } r && r.Protocol == protocol && r.Source.Equals(endpoint) && r.SourcePort == endpointPort);

    /// <summary>
    /// Deletes the entries of <paramref name="protocol"/> flows of an address family
    /// (<see cref="AddressFamilies"/>) that were translated (their reply comes from another
    /// address or port than the original destination) and that <paramref name="stale"/> picks,
    /// given (original destination, port, translated destination, port). Returns how many.
    /// </summary>
    public static int DeleteTranslatedWhere(byte family, byte protocol, Func<IPAddress, ushort, IPAddress, ushort, bool> stale) =>
        DeleteWhere(family, (orig, reply) =>
            Read(orig) is { } o && o.Protocol == protocol && Read(reply) is { } r && r.Protocol == protocol
            && !(o.Destination.Equals(r.Source) && o.DestinationPort == r.SourcePort) && stale(o.Destination, o.DestinationPort, r.Source, r.SourcePort));

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
                cleared += DeleteWhere(family, (orig, reply) => Involves(Read(orig)) || Involves(Read(reply)));
            }
        }
        return cleared;

        bool Involves(Tuple? t) => t is { } flow && (addresses.Contains(flow.Source) || addresses.Contains(flow.Destination));
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

    /// <summary>One direction of a tracked flow.</summary>
    private readonly record struct Tuple(byte Protocol, IPAddress Source, ushort SourcePort, IPAddress Destination, ushort DestinationPort);

    /// <summary>Reads a tuple attribute (either family); null when it lacks its addresses.</summary>
    private static Tuple? Read(ReadOnlySpan<byte> tuple)
    {
        var t = new Attributes(tuple);
        if (!t.TryGet(TupleIp, out var ipNest)) return null;
        var ip = new Attributes(ipNest);
        if (!ip.TryGet(IpV4Src, out var source) && !ip.TryGet(IpV6Src, out source)) return null;
        if (!ip.TryGet(IpV4Dst, out var destination) && !ip.TryGet(IpV6Dst, out destination)) return null;
        var proto = new Attributes(t.TryGet(TupleProto, out var protoNest) ? protoNest : default);
        var protocol = proto.TryGet(ProtoNum, out var num) && num.Length >= 1 ? num[0] : (byte)0;
        return new Tuple(protocol, new IPAddress(source), Port(proto, ProtoSrcPort), new IPAddress(destination), Port(proto, ProtoDstPort));
    }

    private static ushort Port(Attributes proto, ushort type) => proto.TryGet(type, out var p) && p.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(p) : (ushort)0;

    private static void Header(MessageWriter w, byte family)
    {
        var nfgen = w.Struct(4);
        nfgen[0] = family;
    }
}
