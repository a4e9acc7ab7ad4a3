using System.Buffers.Binary;
using System.Net;
using System.Net.NetworkInformation;

namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>
/// rtnetlink, typed: links (VXLAN, veth; up/down, MTU, MAC, rename, move to a namespace),
/// addresses, and batches of routes, neighbours and FDB entries; dumps read the kernel back.
/// One instance owns one socket and is used from one thread at a time (the socket lives in the
/// namespace it was opened in).
/// </summary>
public sealed class RouteNetlink : IDisposable
{
    private readonly NetlinkSocket _socket;

    private RouteNetlink(NetlinkSocket socket) => _socket = socket;

    /// <summary>Opens a socket in the calling thread's network namespace.</summary>
    public static RouteNetlink Open() => new(NetlinkSocket.Open());

    /// <summary>A batch of route, neighbour and FDB changes sent together.</summary>
    public RequestBatch Batch() => new(_socket);

    /// <summary>Creates a VXLAN device: no learning (entries are programmed), the given VNI, UDP port and local address.</summary>
    public void CreateVxlan(string name, uint vni, IPAddress local, ushort port, int mtu, PhysicalAddress? mac = null) =>
        Link(Rtm.NewLink, Rtm.FCreate | Rtm.FExcl, 0, $"create vxlan {name}", w =>
        {
            w.AttributeString(Rtm.IflaIfname, name);
            w.AttributeU32(Rtm.IflaMtu, (uint)mtu);
            if (mac is not null) w.Attribute(Rtm.IflaAddress, mac.GetAddressBytes());
            w.BeginNested(Rtm.IflaLinkinfo);
            w.AttributeString(Rtm.IflaInfoKind, "vxlan");
            w.BeginNested(Rtm.IflaInfoData);
            w.AttributeU32(Rtm.IflaVxlanId, vni);
            w.Attribute(local.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? Rtm.IflaVxlanLocal : Rtm.IflaVxlanLocal6, local.GetAddressBytes());
            w.AttributeBe16(Rtm.IflaVxlanPort, port);
            w.AttributeU8(Rtm.IflaVxlanLearning, 0);
            w.EndNested();
            w.EndNested();
        });

    /// <summary>Creates a veth pair; the peer is created directly in the namespace of <paramref name="peerNamespaceFd"/> when given.</summary>
    public void CreateVeth(string name, string peer, int mtu, int? peerNamespaceFd = null) =>
        Link(Rtm.NewLink, Rtm.FCreate | Rtm.FExcl, 0, $"create veth {name}", w =>
        {
            w.AttributeString(Rtm.IflaIfname, name);
            w.AttributeU32(Rtm.IflaMtu, (uint)mtu);
            w.BeginNested(Rtm.IflaLinkinfo);
            w.AttributeString(Rtm.IflaInfoKind, "veth");
            w.BeginNested(Rtm.IflaInfoData);
            w.BeginNested(Rtm.VethInfoPeer);
            w.Struct(16); // the peer's ifinfomsg
            w.AttributeString(Rtm.IflaIfname, peer);
            w.AttributeU32(Rtm.IflaMtu, (uint)mtu);
            if (peerNamespaceFd is { } fd) w.AttributeU32(Rtm.IflaNetNsFd, (uint)fd);
            w.EndNested();
            w.EndNested();
            w.EndNested();
        });

    /// <summary>Changes a link: up/down, MTU, MAC, name, or moves it to another namespace.</summary>
    public void SetLink(int index, bool? up = null, int? mtu = null, PhysicalAddress? mac = null, string? name = null, int? namespaceFd = null) =>
        Link(Rtm.NewLink, 0, index, $"set link {index}", w =>
        {
            if (mtu is { } m) w.AttributeU32(Rtm.IflaMtu, (uint)m);
            if (mac is not null) w.Attribute(Rtm.IflaAddress, mac.GetAddressBytes());
            if (name is not null) w.AttributeString(Rtm.IflaIfname, name);
            if (namespaceFd is { } fd) w.AttributeU32(Rtm.IflaNetNsFd, (uint)fd);
        }, up);

    public void DeleteLink(int index) => Link(Rtm.DelLink, 0, index, $"delete link {index}", _ => { });

    /// <summary>Adds an address to a link (replacing an equal one).</summary>
    public void AddAddress(int index, IPAddress address, int prefixLength)
    {
        var w = new MessageWriter();
        var sequence = _socket.NextSequence();
        w.BeginMessage(Rtm.NewAddr, Rtm.FRequest | Rtm.FCreate | Rtm.FReplace | Rtm.FAck, sequence);
        var header = w.Struct(8); // ifaddrmsg
        header[0] = RequestBatch.Family(address);
        header[1] = (byte)prefixLength;
        header[2] = Rtm.IfaFNodad; // usable at once: these addresses are ours alone, duplicate detection only delays IPv6
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], index);
        w.Attribute(Rtm.IfaLocal, address.GetAddressBytes());
        w.Attribute(Rtm.IfaAddress, address.GetAddressBytes());
        w.EndMessage();
        Throw(w, sequence, $"add address {address}/{prefixLength}");
    }

    private void Link(ushort type, ushort flags, int index, string operation, Action<MessageWriter> attributes, bool? up = null)
    {
        var w = new MessageWriter();
        var sequence = _socket.NextSequence();
        w.BeginMessage(type, (ushort)(Rtm.FRequest | Rtm.FAck | flags), sequence);
        var header = w.Struct(16); // ifinfomsg: family, pad, type, index, flags, change
        BinaryPrimitives.WriteInt32LittleEndian(header[4..], index);
        if (up is { } isUp)
        {
            BinaryPrimitives.WriteUInt32LittleEndian(header[8..], isUp ? Rtm.IffUp : 0);
            BinaryPrimitives.WriteUInt32LittleEndian(header[12..], Rtm.IffUp);
        }
        attributes(w);
        w.EndMessage();
        Throw(w, sequence, operation);
    }

    private void Throw(MessageWriter w, uint sequence, string operation)
    {
        if (_socket.Transact(w.Written, sequence) is [var (_, errno, reason), ..]) throw new NetlinkException(errno, operation, reason);
    }

    public IReadOnlyList<Link> ListLinks()
    {
        var links = new List<Link>();
        Dump(Rtm.GetLink, 16, Rtm.AfUnspec, (type, payload) =>
        {
            if (type == Rtm.NewLink) links.Add(ParseLink(payload));
        });
        return links;
    }

    /// <summary>One link by name (a single request, not a dump), or null if there is none.</summary>
    public Link? FindLink(string name)
    {
        var w = new MessageWriter();
        var sequence = _socket.NextSequence();
        w.BeginMessage(Rtm.GetLink, Rtm.FRequest | Rtm.FAck, sequence);
        w.Struct(16);
        w.AttributeString(Rtm.IflaIfname, name);
        w.EndMessage();
        Link? found = null;
        try
        {
            _socket.Dump(w.Written, sequence, (type, payload) => found ??= type == Rtm.NewLink ? ParseLink(payload) : null);
        }
        catch (NetlinkException e) when (e.IsNotFound)
        {
            return null;
        }
        return found;
    }

    private static Link ParseLink(ReadOnlySpan<byte> payload)
    {
        var index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
        var flags = BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]);
        var attributes = new Attributes(payload[16..]);
        string? kind = null;
        if (attributes.TryGet(Rtm.IflaLinkinfo, out var info)) kind = new Attributes(info).String(Rtm.IflaInfoKind);
        var mac = attributes.TryGet(Rtm.IflaAddress, out var address) && address.Length == 6 ? new PhysicalAddress(address.ToArray()) : null;
        int? peerNamespace = attributes.U32(Rtm.IflaLinkNetnsid) is { } nsid ? (int)nsid : null;
        return new Link(index, attributes.String(Rtm.IflaIfname) ?? "", kind, (int)(attributes.U32(Rtm.IflaMtu) ?? 0), (flags & Rtm.IffUp) != 0, mac,
            (int)(attributes.U32(Rtm.IflaLink) ?? 0), peerNamespace);
    }

    /// <summary>
    /// The id this socket's namespace gives the namespace of <paramref name="netns"/> (an open
    /// /run/netns or /proc/…/ns/net file), as links' <see cref="Link.PeerNamespace"/> name it; null
    /// when it has none (no link of this namespace has its far end there).
    /// </summary>
    public int? NamespaceId(Microsoft.Win32.SafeHandles.SafeFileHandle netns)
    {
        var w = new MessageWriter();
        var sequence = _socket.NextSequence();
        w.BeginMessage(Rtm.GetNsid, Rtm.FRequest | Rtm.FAck, sequence);
        w.Struct(4); // rtgenmsg, padded
        w.AttributeU32(Rtm.NetnsaFd, (uint)netns.DangerousGetHandle());
        w.EndMessage();
        int? id = null;
        _socket.Dump(w.Written, sequence, (type, payload) =>
        {
            if (type == Rtm.NewNsid && new Attributes(payload[4..]).U32(Rtm.NetnsaNsid) is { } nsid && (int)nsid >= 0) id = (int)nsid;
        });
        return id;
    }

    /// <summary>The addresses of one family (AF_INET or AF_INET6) on every link.</summary>
    public IReadOnlyList<LinkAddress> ListAddresses(byte family)
    {
        var addresses = new List<LinkAddress>();
        Dump(Rtm.GetAddr, 8, family, (type, payload) =>
        {
            if (type != Rtm.NewAddr) return;
            var index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
            var attributes = new Attributes(payload[8..]);
            // IFA_LOCAL is the interface's own address (IFA_ADDRESS is the peer's on point-to-point links).
            if (attributes.TryGet(Rtm.IfaLocal, out var local) || attributes.TryGet(Rtm.IfaAddress, out local))
            {
                addresses.Add(new LinkAddress(index, new IPAddress(local), payload[1]));
            }
        });
        return addresses;
    }

    /// <summary>Routes of a table (main by default); <paramref name="protocol"/> keeps only ours.</summary>
    public IReadOnlyList<Route> ListRoutes(byte family, byte? protocol = null, uint table = Rtm.RtTableMain)
    {
        var routes = new List<Route>();
        Dump(Rtm.GetRoute, 12, family, (type, payload) =>
        {
            if (type != Rtm.NewRoute) return;
            var routeFamily = payload[0];
            var routeProtocol = payload[5];
            var attributes = new Attributes(payload[12..]);
            var routeTable = attributes.U32(Rtm.RtaTable) ?? payload[4];
            if (routeTable != table || (protocol is { } p && routeProtocol != p)) return;
            var destination = attributes.TryGet(Rtm.RtaDst, out var dst) ? new IPAddress(dst) : routeFamily == Rtm.AfInet ? IPAddress.Any : IPAddress.IPv6Any;
            IPAddress? gateway = attributes.TryGet(Rtm.RtaGateway, out var gw) ? new IPAddress(gw) : null;
            var onlink = (BinaryPrimitives.ReadUInt32LittleEndian(payload[8..]) & Rtm.RtnhFOnlink) != 0;
            routes.Add(new Route(destination, payload[1], gateway, (int)(attributes.U32(Rtm.RtaOif) ?? 0), routeProtocol, routeTable, onlink, attributes.U32(Rtm.RtaNhId) ?? 0, payload[7]));
        });
        return routes;
    }

    /// <summary>Policy-routing rules of a family; <paramref name="protocol"/> keeps only ours.</summary>
    public IReadOnlyList<Rule> ListRules(byte family, byte? protocol = null)
    {
        var rules = new List<Rule>();
        Dump(Rtm.GetRule, 12, family, (type, payload) =>
        {
            if (type != Rtm.NewRule) return;
            var attributes = new Attributes(payload[12..]);
            var ruleProtocol = attributes.TryGet(Rtm.FraProtocol, out var p) && p.Length > 0 ? p[0] : (byte)0;
            if (protocol is { } wanted && ruleProtocol != wanted) return;
            IPAddress? destination = attributes.TryGet(Rtm.FraDst, out var d) && d.Length is 4 or 16 ? new IPAddress(d) : null;
            rules.Add(new Rule(attributes.String(Rtm.FraIifname), attributes.U32(Rtm.FraTable) ?? payload[4], attributes.U32(Rtm.FraPriority) ?? 0, ruleProtocol, payload[0],
                destination, payload[1]));
        });
        return rules;
    }

    /// <summary>Nexthop objects; <paramref name="protocol"/> keeps only ours.</summary>
    public IReadOnlyList<Nexthop> ListNexthops(byte? protocol = null)
    {
        var nexthops = new List<Nexthop>();
        Dump(Rtm.GetNexthop, 8, Rtm.AfUnspec, (type, payload) =>
        {
            if (type != Rtm.NewNexthop || (protocol is { } p && payload[2] != p)) return;
            var attributes = new Attributes(payload[8..]);
            IPAddress? gateway = attributes.TryGet(Rtm.NhaGateway, out var gw) && gw.Length is 4 or 16 ? new IPAddress(gw) : null;
            nexthops.Add(new Nexthop(attributes.U32(Rtm.NhaId) ?? 0, gateway, (int)(attributes.U32(Rtm.NhaOif) ?? 0), payload[2]));
        });
        return nexthops;
    }

    public IReadOnlyList<Neighbour> ListNeighbours(byte family) =>
        NeighbourDump(family).Select(n => new Neighbour(n.Index, n.Address!, n.Mac, n.State)).ToList();

    public IReadOnlyList<FdbEntry> ListFdb(int index) =>
        NeighbourDump(Rtm.AfBridge).Where(n => n.Index == index && n.Mac is not null).Select(n => new FdbEntry(n.Index, n.Mac!, n.Address, n.State)).ToList();

    private List<(int Index, IPAddress? Address, PhysicalAddress? Mac, ushort State)> NeighbourDump(byte family)
    {
        var entries = new List<(int, IPAddress?, PhysicalAddress?, ushort)>();
        Dump(Rtm.GetNeigh, 12, family, (type, payload) =>
        {
            if (type != Rtm.NewNeigh) return;
            var index = BinaryPrimitives.ReadInt32LittleEndian(payload[4..]);
            var state = BinaryPrimitives.ReadUInt16LittleEndian(payload[8..]);
            var attributes = new Attributes(payload[12..]);
            IPAddress? address = attributes.TryGet(Rtm.NdaDst, out var dst) && dst.Length is 4 or 16 ? new IPAddress(dst) : null;
            var mac = attributes.TryGet(Rtm.NdaLladdr, out var ll) && ll.Length == 6 ? new PhysicalAddress(ll.ToArray()) : null;
            entries.Add((index, address, mac, state));
        });
        return entries;
    }

    private void Dump(ushort type, int headerSize, byte family, NetlinkSocket.MessageHandler onMessage)
    {
        var w = new MessageWriter();
        var sequence = _socket.NextSequence();
        w.BeginMessage(type, Rtm.FRequest | Rtm.FDump, sequence);
        w.Struct(headerSize)[0] = family;
        w.EndMessage();
        _socket.Dump(w.Written, sequence, onMessage);
    }

    public void Dispose() => _socket.Dispose();
}
