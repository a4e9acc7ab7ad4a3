using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>The netlink family numbers of IP addresses, in one place: IPv4 and IPv6 take the same code path.</summary>
public static class AddressFamilies
{
    public const byte Inet = 2, Inet6 = 10;

    /// <summary>Both IP families, for sweeps that cover everything of ours.</summary>
    public static IReadOnlyList<byte> Both { get; } = [Inet, Inet6];

    public static byte Of(IPAddress address) => address.AddressFamily == AddressFamily.InterNetwork ? Inet : Inet6;

    /// <summary>Prefix length of a host route: 32 or 128.</summary>
    public static int HostBits(IPAddress address) => Of(address) == Inet ? 32 : 128;
}
