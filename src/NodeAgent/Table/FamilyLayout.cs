using System.Net;
using System.Net.Sockets;
using ControlPlane.Dataplane.Linux.Nftables;

namespace ControlPlane.NodeAgent.Table;

/// <summary>Where one address family keeps its fields: the same rules are written once for both.</summary>
public sealed record FamilyLayout(string Suffix, byte NfProto, int AddressBytes, uint SourceOffset, uint DestinationOffset)
{
    public static readonly FamilyLayout V4 = new("4", Nft.FamilyIpv4, 4, 12, 16);
    public static readonly FamilyLayout V6 = new("6", Nft.FamilyIpv6, 16, 8, 24);
    public static readonly FamilyLayout[] Both = [V4, V6];

    public static FamilyLayout Of(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? V4 : V6;

    /// <summary>32-bit registers an address takes.</summary>
    public int AddressRegisters => AddressBytes / 4;

    public uint AddressType => AddressBytes == 4 ? Nft.TypeIpAddr : Nft.TypeIp6Addr;

    public string Dispatch => "svc" + Suffix;

    public string Backends => "be" + Suffix;

    public string Affinity => "aff" + Suffix;

    public string AffinityServices => "affsvc" + Suffix;

    public string NoEndpoints => "noep" + Suffix;

    public string Hairpin => "hairpin" + Suffix;

    /// <summary>Every virtual IP of the family (services and imports).</summary>
    public string Vips => "vip" + Suffix;

    /// <summary>VIP . source range: the sources a virtual IP serves (its network's range).</summary>
    public string VipSources => "vipsrc" + Suffix;

    /// <summary>A rule that starts by matching packets of this family.</summary>
    public RuleBuilder Match() => new RuleBuilder().Meta(RuleBuilder.MetaNfProto, 0).CmpByte(0, RuleBuilder.CmpEq, NfProto);
}
