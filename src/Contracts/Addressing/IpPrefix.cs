using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Contracts.Addressing;

/// <summary>
/// An IPv4 or IPv6 prefix, held as a 128-bit number so that one code path serves both families.
/// IPv4 addresses occupy the low 32 bits. Its parsing is the server's rule for every prefix a
/// user writes, shared with netctl's checks: each Parse returns the prefix, or null and the reason
/// (the server reports it as INVALID_ARGUMENT naming the field, netctl as a manifest problem).
/// </summary>
public readonly record struct IpPrefix(UInt128 Network, int Length, AddressFamily Family)
{
    public int Bits => Family == AddressFamily.InterNetwork ? 32 : 128;

    /// <summary>The host bits of the prefix, all ones (::/0 spans all 128, which no shift by 128 gives).</summary>
    public UInt128 HostMask => Bits - Length == 128 ? UInt128.MaxValue : (UInt128.One << (Bits - Length)) - 1;

    public UInt128 Last => Network | HostMask;

    public bool Overlaps(IpPrefix other) =>
        Family == other.Family && Network <= other.Last && other.Network <= Last;

    public bool Contains(IpPrefix other) =>
        Family == other.Family && other.Length >= Length && other.Network >= Network && other.Last <= Last;

    public bool Contains(UInt128 address) => address >= Network && address <= Last;

    /// <summary>Whether <paramref name="address"/> is of this prefix's family and inside it.</summary>
    public bool Contains(IPAddress address) => address.AddressFamily == Family && Contains(ToNumber(address));

    public IPAddress AddressAt(UInt128 offset) => ToAddress(Network + offset, Family);

    public override string ToString() => $"{ToAddress(Network, Family)}/{Length}";

    /// <summary>
    /// Parses "address/length" as written by a user: the address in canonical input form (an IPv4
    /// dotted quad of decimal parts without leading zeros, IPv6 without a zone, as
    /// <see cref="HostAddresses.Parse"/> requires), the length in decimal without leading zeros, and
    /// the host bits zero. "010.0.0.0/8" (octal to IPAddress, decimal to others) is refused rather
    /// than read differently from every other tool that reads it back.
    /// </summary>
    public static IpPrefix? Parse(string text, out string? problem) => Parse(text, canonical: true, masked: false, out problem);

    /// <summary>
    /// Parses a prefix this control plane stored earlier: as <see cref="Parse"/>, but the address
    /// may be in any form IPAddress reads, so that a network accepted before input forms were
    /// checked still loads as it was allocated.
    /// </summary>
    public static IpPrefix? ParseStored(string text, out string? problem) => Parse(text, canonical: false, masked: false, out problem);

    /// <summary>
    /// Parses a range to match addresses against, as Kubernetes reads a NetworkPolicy's
    /// ipBlock: as <see cref="Parse"/>, but host bits are ignored ("10.1.2.3/8" is 10.0.0.0/8), so
    /// manifests written for Kubernetes (its e2e tests write "podIP/4") apply unchanged.
    /// </summary>
    public static IpPrefix? ParseMasked(string text, out string? problem) => Parse(text, canonical: true, masked: true, out problem);

    private static IpPrefix? Parse(string text, bool canonical, bool masked, out string? problem)
    {
        problem = null;
        var slash = text.IndexOf('/');
        var lengthText = slash < 0 ? default : text.AsSpan(slash + 1);
        if (slash < 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address) ||
            (canonical && (!HostAddresses.IsPlainForm(text.AsSpan(0, slash), address) || !HostAddresses.IsDecimal(lengthText, 3))) ||
            !int.TryParse(lengthText, System.Globalization.NumberStyles.None, null, out var length))
        {
            problem = $"{Echo.Quote(text)} is not a CIDR (an IPv4 dotted quad of decimal parts without leading zeros, or an IPv6 address; '/'; a prefix length)";
            return null;
        }
        if (HostAddresses.Unusual(text.AsSpan(0, slash), address) is { } reason)
        {
            problem = $"{Echo.Quote(text)}: the address {reason}";
            return null;
        }
        var value = ToNumber(address);
        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (length > bits)
        {
            problem = $"prefix length {length} is longer than {bits} bits";
            return null;
        }
        var prefix = new IpPrefix(value, length, address.AddressFamily);
        if (masked)
        {
            return new IpPrefix(value & ~prefix.HostMask, length, address.AddressFamily);
        }
        if ((value & prefix.HostMask) != 0)
        {
            problem = $"{Echo.Quote(text)} has host bits set; did you mean {new IpPrefix(value & ~prefix.HostMask, length, address.AddressFamily)}?";
            return null;
        }
        return prefix;
    }

    public static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4
            ? BinaryPrimitives.ReadUInt32BigEndian(bytes)
            : BinaryPrimitives.ReadUInt128BigEndian(bytes);
    }

    public static IPAddress ToAddress(UInt128 value, AddressFamily family)
    {
        if (family == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32BigEndian(v4, (uint)value);
            return new IPAddress(v4);
        }
        Span<byte> v6 = stackalloc byte[16];
        BinaryPrimitives.WriteUInt128BigEndian(v6, value);
        return new IPAddress(v6);
    }
}
