using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Contracts.Addressing;

/// <summary>
/// Addresses that can be neither a network's nor a node's underlay address, because the kernel
/// never routes them between hosts as unicast: "this network" and the unspecified address,
/// loopback, link-local, multicast, the limited broadcast address and IPv4-mapped IPv6. One table
/// for both families; a prefix is refused when it overlaps any of them. Shared by the server and
/// netctl's checks.
/// </summary>
public static class SpecialRanges
{
    private static readonly (IpPrefix Range, string What)[] Ranges =
    [
        (V4(0, 8), "\"this network\""),
        (V4(127u << 24, 8), "loopback"),
        (V4(0xA9FEu << 16, 16), "link-local"),
        (V4(224u << 24, 4), "multicast"),
        (V4(uint.MaxValue, 32), "the limited broadcast address"),
        (V6(0, 128), "the unspecified address"),
        (V6(1, 128), "loopback"),
        (V6((UInt128)0xFFFF << 32, 96), "IPv4-mapped"),
        (V6((UInt128)0xFE80 << 112, 10), "link-local"),
        (V6((UInt128)0xFF << 120, 8), "multicast"),
    ];

    /// <summary>Why a network range cannot be used (it overlaps a special range); null when it can.</summary>
    public static string? Problem(IpPrefix prefix) =>
        Overlapped(prefix) is var (range, what) ? $"{prefix} overlaps {what} ({range})" : null;

    /// <summary>Why a host address cannot be used (it lies in a special range); null when it can.</summary>
    public static string? Problem(IPAddress address)
    {
        var host = new IpPrefix(IpPrefix.ToNumber(address), address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128, address.AddressFamily);
        return Overlapped(host) is var (range, what) ? $"{address} is {what} ({range}), not a unicast address another host can reach" : null;
    }

    private static (IpPrefix Range, string What)? Overlapped(IpPrefix prefix) =>
        Array.Find(Ranges, r => r.Range.Overlaps(prefix)) is { What: not null } found ? found : null;

    private static IpPrefix V4(uint network, int length) => new(network, length, AddressFamily.InterNetwork);

    private static IpPrefix V6(UInt128 network, int length) => new(network, length, AddressFamily.InterNetworkV6);
}
