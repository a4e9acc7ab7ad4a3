using System.Buffers.Binary;
using System.Net;
using ControlPlane.Grains.Ipam;
using ControlPlane.Storage;

namespace ControlPlane.Grains;

/// <summary>
/// The claims objects hold in the store, by scope: the store refuses a second holder of any of
/// them (docs/ARCHITECTURE.md, "Storage"). Addresses are 16-byte values (IPv4 mapped into IPv6), so
/// IPv4 and IPv6 share one scope and one code path.
/// </summary>
public static class Claims
{
    /// <summary>Endpoint addresses, per network.</summary>
    public static string AddressScope(string network) => "address/" + network;

    public const string ServiceIpScope = "service-ip";

    public const string VniScope = "vni";

    /// <summary>Underlay addresses of nodes: two nodes never share one.</summary>
    public const string UnderlayScope = "underlay";

    /// <summary>Address ranges of networks (and nothing may overlap them).</summary>
    public const string RangeScope = "network-range";

    public static Claim Address(string network, IPAddress address) => Claim.Of(AddressScope(network), Bytes(address));

    public static Claim ServiceIp(IPAddress address) => Claim.Of(ServiceIpScope, Bytes(address));

    public static Claim Underlay(IPAddress address) => Claim.Of(UnderlayScope, Bytes(address));

    public static Claim Vni(uint vni)
    {
        var value = new byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(value, vni);
        return Claim.Of(VniScope, value);
    }

    public static Claim Range(IpPrefix prefix) => new(RangeScope,
        Bytes(IpPrefix.ToAddress(prefix.Network, prefix.Family)), Bytes(IpPrefix.ToAddress(prefix.Last, prefix.Family)));

    /// <summary>The range a <see cref="Range"/> claim holds, as a prefix.</summary>
    public static IpPrefix RangeOf(Claim claim)
    {
        var (low, high) = (AddressOf(claim), new IPAddress(claim.High));
        var family = low.AddressFamily;
        var span = IpPrefix.ToNumber(high.IsIPv4MappedToIPv6 ? high.MapToIPv4() : high) - IpPrefix.ToNumber(low);
        var bits = family == System.Net.Sockets.AddressFamily.InterNetwork ? 32 : 128;
        var hostBits = span == UInt128.MaxValue ? 128 : 128 - (int)UInt128.LeadingZeroCount(span);
        return new IpPrefix(IpPrefix.ToNumber(low), bits - hostBits, family);
    }

    public static IPAddress AddressOf(Claim claim)
    {
        var address = new IPAddress(claim.Low);
        return address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address;
    }

    private static byte[] Bytes(IPAddress address) => address.MapToIPv6().GetAddressBytes();
}
