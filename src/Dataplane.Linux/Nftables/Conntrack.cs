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
    public static int DeleteTranslated(byte protocol, IPAddress service, ushort servicePort, IPAddress endpoint, ushort endpointPort)
    {
        using var socket = NetlinkSocket.Open(NetlinkSocket.NetlinkNetfilter);
        var family = AddressFamilies.Of(service);
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
            if (Matches(orig, protocol, destination: service, destinationPort: servicePort)
                && Matches(reply, protocol, source: endpoint, sourcePort: endpointPort))
            {
                doomed.Add(orig.ToArray());
            }
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

    private static ushort Port(Attributes proto, ushort type) => proto.TryGet(type, out var p) && p.Length >= 2 ? BinaryPrimitives.ReadUInt16BigEndian(p) : (ushort)0;

    private static void Header(MessageWriter w, byte family)
    {
        var nfgen = w.Struct(4);
        nfgen[0] = family;
    }
}
