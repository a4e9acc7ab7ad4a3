using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;

namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>
/// Many rtnetlink changes sent together. Messages go out in chunks of about 64 KiB; only the last
/// message of each chunk asks for an ACK (an ACK per message in a large batch would overflow the
/// receive buffer), and a failed message is still reported, by its sequence number, so each
/// failure maps back to the change that caused it.
/// </summary>
public sealed class RequestBatch
{
    private const int ChunkBytes = 64 * 1024;
    private readonly NetlinkSocket _socket;
    private readonly List<(MessageWriter Writer, int LastOffset, uint LastSequence)> _chunks = [];
    private readonly Dictionary<uint, string> _descriptions = [];
    private MessageWriter _current = new();
    private int _lastOffset;
    private uint _lastSequence;

    internal RequestBatch(NetlinkSocket socket) => _socket = socket;

    public int Count => _descriptions.Count;

    /// <summary>Adds or replaces a route (protocol marks it as ours; onlink needs no prior route to the gateway).</summary>
    public RequestBatch ReplaceRoute(IPAddress destination, int prefixLength, IPAddress? gateway, int outputIndex, byte protocol, bool onlink = false, uint? metric = null, uint table = Rtm.RtTableMain) =>
        Route(Rtm.NewRoute, Rtm.FCreate | Rtm.FReplace, destination, prefixLength, gateway, outputIndex, protocol, onlink, metric, table);

    /// <summary>
    /// Adds a nexthop object (kernel 5.3+): one per remote node, shared by all its routes.
    /// Routes that each carry their own gateway cost the kernel more per route as the table
    /// grows; routes naming a nexthop id stay linear. The kernel refuses REPLACE for a nexthop
    /// that does not exist, so adding and replacing are separate calls.
    /// </summary>
    public RequestBatch AddNexthop(uint id, IPAddress gateway, int outputIndex, byte protocol, bool onlink = true) =>
        Nexthop(Rtm.FCreate | Rtm.FExcl, id, gateway, outputIndex, protocol, onlink);

    /// <summary>Changes an existing nexthop object in place (its routes follow).</summary>
    public RequestBatch ReplaceNexthop(uint id, IPAddress gateway, int outputIndex, byte protocol, bool onlink = true) =>
        Nexthop(Rtm.FReplace, id, gateway, outputIndex, protocol, onlink);

    private RequestBatch Nexthop(ushort flags, uint id, IPAddress gateway, int outputIndex, byte protocol, bool onlink)
    {
        var w = Begin(Rtm.NewNexthop, flags, $"nexthop {id}");
        var header = w.Struct(8); // nhmsg: family, scope, protocol, resvd, flags
        header[0] = Family(gateway);
        header[2] = protocol;
        BinaryPrimitives.WriteUInt32LittleEndian(header[4..], onlink ? Rtm.RtnhFOnlink : 0);
        w.AttributeU32(Rtm.NhaId, id);
        w.AttributeU32(Rtm.NhaOif, (uint)outputIndex);
        w.Attribute(Rtm.NhaGateway, gateway.GetAddressBytes());
        return End();
    }

    public RequestBatch DeleteNexthop(uint id)
    {
        var w = Begin(Rtm.DelNexthop, 0, $"nexthop {id}");
        w.Struct(8);
        w.AttributeU32(Rtm.NhaId, id);
        return End();
    }

    /// <summary>Adds or replaces a route through a nexthop object.</summary>
    public RequestBatch ReplaceRouteVia(IPAddress destination, int prefixLength, uint nexthopId, byte protocol, uint table = Rtm.RtTableMain)
    {
        var w = Begin(Rtm.NewRoute, Rtm.FCreate | Rtm.FReplace, $"route {destination}/{prefixLength}");
        var header = w.Struct(12);
        header[0] = Family(destination);
        header[1] = (byte)prefixLength;
        header[4] = TableByte(table);
        header[5] = protocol;
        header[6] = Rtm.RtScopeUniverse;
        header[7] = Rtm.RtnUnicast;
        w.Attribute(Rtm.RtaDst, destination.GetAddressBytes());
        w.AttributeU32(Rtm.RtaNhId, nexthopId);
        w.AttributeU32(Rtm.RtaTable, table);
        return End();
    }

    /// <summary>Deletes a route. Pass <paramref name="outputIndex"/> 0 for a route through a nexthop object (the device is the nexthop's).</summary>
    public RequestBatch DeleteRoute(IPAddress destination, int prefixLength, int outputIndex, byte protocol, uint table = Rtm.RtTableMain) =>
        Route(Rtm.DelRoute, 0, destination, prefixLength, null, outputIndex, protocol, false, null, table);

    /// <summary>
    /// A route without a nexthop that ends a lookup: <see cref="Rtm.RtnUnreachable"/> (the packet is
    /// refused with an ICMP error) or <see cref="Rtm.RtnThrow"/> (the lookup falls through to the
    /// next rule). A null destination is the default route.
    /// </summary>
    public RequestBatch ReplaceTerminalRoute(byte type, byte family, IPAddress? destination, int prefixLength, uint table, byte protocol) =>
        TerminalRoute(Rtm.NewRoute, Rtm.FCreate | Rtm.FReplace, type, family, destination, prefixLength, table, protocol);

    /// <summary>Deletes a route of the given type (unreachable, throw) from a table.</summary>
    public RequestBatch DeleteTerminalRoute(byte type, byte family, IPAddress? destination, int prefixLength, uint table, byte protocol) =>
        TerminalRoute(Rtm.DelRoute, 0, type, family, destination, prefixLength, table, protocol);

    private RequestBatch TerminalRoute(ushort message, ushort flags, byte type, byte family, IPAddress? destination, int prefixLength, uint table, byte protocol)
    {
        var w = Begin(message, flags, $"{(type == Rtm.RtnThrow ? "throw" : "unreachable")} {destination?.ToString() ?? "default"}/{prefixLength} table {table}");
        var header = w.Struct(12);
        header[0] = family;
        header[1] = (byte)prefixLength;
        header[4] = TableByte(table);
        header[5] = protocol;
        header[6] = Rtm.RtScopeUniverse;
        header[7] = type;
        if (destination is not null) w.Attribute(Rtm.RtaDst, destination.GetAddressBytes());
        w.AttributeU32(Rtm.RtaTable, table);
        return End();
    }

    /// <summary>Adds a rule: traffic arriving on <paramref name="inputInterface"/> looks up <paramref name="table"/>.</summary>
    public RequestBatch AddRule(byte family, string inputInterface, uint table, uint priority, byte protocol) =>
        Rule(Rtm.NewRule, Rtm.FCreate | Rtm.FExcl, family, inputInterface, table, priority, protocol);

    public RequestBatch DeleteRule(byte family, string inputInterface, uint table, uint priority, byte protocol) =>
        Rule(Rtm.DelRule, 0, family, inputInterface, table, priority, protocol);

    /// <summary>Adds a rule: traffic to <paramref name="destination"/>/<paramref name="prefixLength"/> looks up <paramref name="table"/>.</summary>
    public RequestBatch AddRuleTo(IPAddress destination, int prefixLength, uint table, uint priority, byte protocol) =>
        Rule(Rtm.NewRule, Rtm.FCreate | Rtm.FExcl, Family(destination), null, table, priority, protocol, destination, prefixLength);

    public RequestBatch DeleteRuleTo(IPAddress destination, int prefixLength, uint table, uint priority, byte protocol) =>
        Rule(Rtm.DelRule, 0, Family(destination), null, table, priority, protocol, destination, prefixLength);

    private RequestBatch Rule(ushort type, ushort flags, byte family, string? inputInterface, uint table, uint priority, byte protocol,
        IPAddress? destination = null, int prefixLength = 0)
    {
        var w = Begin(type, flags, inputInterface is null ? $"rule to {destination}/{prefixLength} table {table}" : $"rule iif {inputInterface} table {table}");
        var header = w.Struct(12); // fib_rule_hdr
        header[0] = family;
        header[1] = (byte)prefixLength;
        header[4] = TableByte(table);
        header[7] = Rtm.FrActToTable;
        if (inputInterface is not null) w.AttributeString(Rtm.FraIifname, inputInterface);
        if (destination is not null) w.Attribute(Rtm.FraDst, destination.GetAddressBytes());
        w.AttributeU32(Rtm.FraPriority, priority);
        w.AttributeU32(Rtm.FraTable, table);
        w.AttributeU8(Rtm.FraProtocol, protocol);
        return End();
    }

    /// <summary>The 8-bit table field: the id itself when it fits, else "compat" with the id in an attribute.</summary>
    private static byte TableByte(uint table) => table < 256 ? (byte)table : Rtm.RtTableCompat;

    private RequestBatch Route(ushort type, ushort flags, IPAddress destination, int prefixLength, IPAddress? gateway, int outputIndex, byte protocol, bool onlink, uint? metric, uint table)
    {
        var w = Begin(type, flags, $"route {destination}/{prefixLength}");
        var header = w.Struct(12); // rtmsg
        header[0] = Family(destination);
        header[1] = (byte)prefixLength;
        header[4] = TableByte(table);
        header[5] = protocol;
        var delete = type == Rtm.DelRoute;
        // A delete names scope "nowhere" and no type: the kernel then matches any (as iproute2 does).
        header[6] = delete ? Rtm.RtScopeNowhere : gateway is null ? Rtm.RtScopeLink : Rtm.RtScopeUniverse;
        header[7] = delete ? (byte)0 : Rtm.RtnUnicast;
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], onlink ? Rtm.RtnhFOnlink : 0);
        w.Attribute(Rtm.RtaDst, destination.GetAddressBytes());
        if (gateway is not null) w.Attribute(Rtm.RtaGateway, gateway.GetAddressBytes());
        if (outputIndex > 0) w.AttributeU32(Rtm.RtaOif, (uint)outputIndex);
        if (metric is { } m) w.AttributeU32(Rtm.RtaPriority, m);
        w.AttributeU32(Rtm.RtaTable, table);
        return End();
    }

    /// <summary>Adds or replaces a permanent neighbour entry: IP → MAC on a device.</summary>
    public RequestBatch ReplaceNeighbour(int index, IPAddress address, PhysicalAddress mac) =>
        Neighbour(Rtm.NewNeigh, Rtm.FCreate | Rtm.FReplace, Family(address), index, address, mac, 0, $"neighbour {address}");

    public RequestBatch DeleteNeighbour(int index, IPAddress address) =>
        Neighbour(Rtm.DelNeigh, 0, Family(address), index, address, null, 0, $"neighbour {address}");

    /// <summary>Adds or replaces a permanent FDB entry of a VXLAN device: MAC → remote VTEP address.</summary>
    public RequestBatch AppendFdb(int index, PhysicalAddress mac, IPAddress destination) =>
        Neighbour(Rtm.NewNeigh, Rtm.FCreate | Rtm.FReplace, Rtm.AfBridge, index, destination, mac, Rtm.NtfSelf, $"fdb {mac}");

    public RequestBatch DeleteFdb(int index, PhysicalAddress mac, IPAddress destination) =>
        Neighbour(Rtm.DelNeigh, 0, Rtm.AfBridge, index, destination, mac, Rtm.NtfSelf, $"fdb {mac}");

    private RequestBatch Neighbour(ushort type, ushort flags, byte family, int index, IPAddress address, PhysicalAddress? mac, byte ntfFlags, string description)
    {
        var w = Begin(type, flags, description);
        var header = w.Struct(12); // ndmsg
        header[0] = family;
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], index);
        BinaryPrimitives.WriteUInt16LittleEndian(header[8..], Rtm.NudPermanent);
        header[10] = ntfFlags;
        w.Attribute(Rtm.NdaDst, address.GetAddressBytes());
        if (mac is not null) w.Attribute(Rtm.NdaLladdr, mac.GetAddressBytes());
        return End();
    }

    /// <summary>Sends everything; returns the failures (empty when all succeeded).</summary>
    public IReadOnlyList<(string Change, NetlinkException Error)> Execute()
    {
        Seal();
        var failures = new List<(string, NetlinkException)>();
        foreach (var (writer, lastOffset, lastSequence) in _chunks)
        {
            writer.AddFlags(lastOffset, Rtm.FAck);
            foreach (var (sequence, errno, reason) in _socket.Transact(writer.Written, lastSequence))
            {
                var change = _descriptions.GetValueOrDefault(sequence, $"message {sequence}");
                failures.Add((change, new NetlinkException(errno, change, reason)));
            }
        }
        _chunks.Clear();
        _descriptions.Clear();
        return failures;
    }

    /// <summary>Sends everything and throws the first failure.</summary>
    public void ExecuteOrThrow()
    {
        if (Execute() is [var (_, error), ..]) throw error;
    }

    private MessageWriter Begin(ushort type, ushort flags, string description)
    {
        if (_current.Length > ChunkBytes) Seal();
        var sequence = _socket.NextSequence();
        _lastOffset = _current.Length;
        _lastSequence = sequence;
        _descriptions[sequence] = description;
        _current.BeginMessage(type, (ushort)(Rtm.FRequest | flags), sequence);
        return _current;
    }

    private RequestBatch End()
    {
        _current.EndMessage();
        return this;
    }

    private void Seal()
    {
        if (_current.Count == 0) return;
        _chunks.Add((_current, _lastOffset, _lastSequence));
        _current = new MessageWriter();
    }

    internal static byte Family(IPAddress address) => AddressFamilies.Of(address);
}
