using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Dns.Handling;

/// <summary>
/// A client's address as one 128-bit number: IPv6 as is, IPv4 as its IPv4-mapped IPv6 form
/// (::ffff:a.b.c.d), so one comparison under a mask serves both families. Read from the raw
/// socket address the transports receive (Linux sockaddr_in / sockaddr_in6), without allocating.
/// </summary>
public readonly record struct ClientAddress(UInt128 Value)
{
    private const ushort InterNetwork = 2;
    private const ushort InterNetworkV6 = 10;
    private static readonly UInt128 MappedPrefix = (UInt128)0xFFFF << 32;
    private static readonly UInt128 MappedMask = UInt128.MaxValue << 32;

    public bool IsIPv4 => (Value & MappedMask) == MappedPrefix;

    /// <summary>Reads a sockaddr_in or sockaddr_in6 (family in host order, as Linux and .NET's SocketAddress lay it out).</summary>
    public static bool TryRead(ReadOnlySpan<byte> socketAddress, out ClientAddress address)
    {
        address = default;
        if (socketAddress.Length < 8) return false;
        var family = BitConverter.ToUInt16(socketAddress);
        if (family == InterNetwork)
        {
            address = new ClientAddress(MappedPrefix | BinaryPrimitives.ReadUInt32BigEndian(socketAddress[4..]));
            return true;
        }
        if (family == InterNetworkV6 && socketAddress.Length >= 24)
        {
            address = new ClientAddress(BinaryPrimitives.ReadUInt128BigEndian(socketAddress[8..]));
            return true;
        }
        return false;
    }

    public static ClientAddress From(IPAddress ip)
    {
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            Span<byte> v4 = stackalloc byte[4];
            ip.TryWriteBytes(v4, out _);
            return new ClientAddress(MappedPrefix | BinaryPrimitives.ReadUInt32BigEndian(v4));
        }
        Span<byte> v6 = stackalloc byte[16];
        ip.TryWriteBytes(v6, out _);
        return new ClientAddress(BinaryPrimitives.ReadUInt128BigEndian(v6));
    }

    /// <summary>The mask of a prefix length in this address's own family (IPv4 lengths count from the mapped form's bit 96).</summary>
    public static UInt128 Mask(int prefixLength, bool ipv4)
    {
        var bits = Math.Clamp(ipv4 ? 96 + prefixLength : prefixLength, 0, 128);
        return bits == 0 ? UInt128.Zero : UInt128.MaxValue << (128 - bits);
    }
}
