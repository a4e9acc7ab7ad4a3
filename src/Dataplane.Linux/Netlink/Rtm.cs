namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>Netlink and rtnetlink numbers (linux/netlink.h, rtnetlink.h, if_link.h, neighbour.h).</summary>
internal static class Rtm
{
    public const ushort NlmsgError = 2, NlmsgDone = 3;
    public const ushort NewLink = 16, DelLink = 17, GetLink = 18;
    public const ushort NewAddr = 20, DelAddr = 21, GetAddr = 22;
    public const ushort NewRoute = 24, DelRoute = 25, GetRoute = 26;
    public const ushort NewNeigh = 28, DelNeigh = 29, GetNeigh = 30;
    public const ushort NewNexthop = 104, DelNexthop = 105, GetNexthop = 106;
    public const ushort NewRule = 32, DelRule = 33, GetRule = 34;
    public const ushort NewNsid = 88, GetNsid = 90;

    // netns id attributes (net_namespace.h)
    public const ushort NetnsaNsid = 1, NetnsaFd = 3;

    // fib_rule_hdr attributes and values
    public const ushort FraDst = 1;
    public const ushort FraIifname = 3, FraPriority = 6, FraTable = 15, FraProtocol = 21;
    public const byte FrActToTable = 1;

    public const ushort FRequest = 0x1, FMulti = 0x2, FAck = 0x4, FDump = 0x300;
    public const ushort FReplace = 0x100, FExcl = 0x200, FCreate = 0x400;

    public const byte AfUnspec = 0, AfInet = 2, AfBridge = 7, AfInet6 = 10;

    // ifinfomsg attributes
    public const ushort IflaAddress = 1, IflaIfname = 3, IflaMtu = 4, IflaLink = 5, IflaMaster = 10, IflaLinkinfo = 18, IflaNetNsFd = 28, IflaLinkNetnsid = 37;
    public const ushort IflaInfoKind = 1, IflaInfoData = 2;
    public const ushort IflaVxlanId = 1, IflaVxlanLocal = 4, IflaVxlanLearning = 7, IflaVxlanPort = 15, IflaVxlanLocal6 = 17;
    public const ushort VethInfoPeer = 1;
    public const uint IffUp = 0x1;

    // ifaddrmsg attributes
    public const ushort IfaAddress = 1, IfaLocal = 2;
    public const byte IfaFNodad = 0x02;

    // rtmsg attributes and values
    public const ushort RtaDst = 1, RtaOif = 4, RtaGateway = 5, RtaPriority = 6, RtaTable = 15, RtaNhId = 30;

    // nhmsg attributes
    public const ushort NhaId = 1, NhaOif = 5, NhaGateway = 6;
    public const byte RtTableCompat = 252, RtTableMain = 254, RtScopeUniverse = 0, RtScopeLink = 253, RtScopeNowhere = 255, RtnUnicast = 1, RtnUnreachable = 7, RtnThrow = 9;
    public const uint RtnhFOnlink = 4;

    // ndmsg attributes and values
    public const ushort NdaDst = 1, NdaLladdr = 2;
    public const ushort NudPermanent = 0x80;
    public const byte NtfSelf = 0x02;
}
