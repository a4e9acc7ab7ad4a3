using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Ipam;

/// <summary>
/// An IPv4 or IPv6 prefix, held as a 128-bit number so that one code path serves both families.
/// IPv4 addresses occupy the low 32 bits.
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

    public IPAddress AddressAt(UInt128 offset) => ToAddress(Network + offset, Family);

    public override string ToString() => $"{ToAddress(Network, Family)}/{Length}";

    /// <summary>Parses "address/length", requiring the host bits to be zero.</summary>
    public static IpPrefix Parse(string field, string text)
    {
        var slash = text.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(text.AsSpan(0, slash), out var address) ||
            !int.TryParse(text.AsSpan(slash + 1), System.Globalization.NumberStyles.None, null, out var length))
        {
            throw ControlPlaneException.Invalid(field, $"'{text}' is not a CIDR (address/prefix-length)");
        }
        if (address.IsIPv4MappedToIPv6 || (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0))
        {
            throw ControlPlaneException.Invalid(field, $"'{text}' must be a plain IPv4 or IPv6 prefix");
        }
        var value = ToNumber(address);
        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (length > bits)
        {
            throw ControlPlaneException.Invalid(field, $"prefix length {length} is longer than {bits} bits");
        }
        var prefix = new IpPrefix(value, length, address.AddressFamily);
        if ((value & prefix.HostMask) != 0)
        {
            throw ControlPlaneException.Invalid(field, $"'{text}' has host bits set; did you mean {new IpPrefix(value & ~prefix.HostMask, length, address.AddressFamily)}?");
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
