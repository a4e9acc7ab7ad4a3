using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// An address of either family as 128 bits (IPv4 in the low 32) and its family, so one set and
/// one code path hold both. Parsed from pod record labels without allocation.
/// </summary>
public readonly record struct PodAddress(UInt128 Bits, bool IsV6)
{
    /// <summary>
    /// A cheap hash of the bits: the generated one mixes both halves of a UInt128 with a seeded
    /// hash, several times slower on a set of tens of thousands of pod addresses. The addresses
    /// come from the control plane, not from queries, so nobody can choose them to collide.
    /// </summary>
    public override int GetHashCode()
    {
        var folded = (ulong)Bits ^ (ulong)(Bits >> 64);
        return (int)(folded ^ (folded >> 32)) ^ (IsV6 ? 0x5BD1E995 : 0);
    }

    public bool Equals(PodAddress other) => Bits == other.Bits && IsV6 == other.IsV6;

    public DnsType Type => IsV6 ? DnsType.AAAA : DnsType.A;

    public int Length => IsV6 ? 16 : 4;

    /// <summary>An address as the control plane writes it (an endpoint's status); false for anything else.</summary>
    public static bool TryParse(string text, out PodAddress address)
    {
        address = IPAddress.TryParse(text, out var parsed) ? From(parsed) : default;
        return parsed is not null;
    }

    public static PodAddress From(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        return written == 4
            ? new PodAddress(BinaryPrimitives.ReadUInt32BigEndian(bytes), IsV6: false)
            : new PodAddress(BinaryPrimitives.ReadUInt128BigEndian(bytes), IsV6: address.AddressFamily == AddressFamily.InterNetworkV6);
    }

    /// <summary>Writes the address in network order (4 or 16 bytes).</summary>
    public void Write(Span<byte> destination)
    {
        if (IsV6) BinaryPrimitives.WriteUInt128BigEndian(destination, Bits);
        else BinaryPrimitives.WriteUInt32BigEndian(destination, (uint)Bits);
    }

    /// <summary>
    /// Reads a pod label: an IPv4 address with dashes for dots (four decimal parts without leading
    /// zeros, "10-244-0-5"), or an IPv6 address with dashes for colons, in any valid spelling
    /// ("fd00-244--5", "fd00-244-0-0-0-0-0-5").
    /// </summary>
    public static bool TryParseLabel(ReadOnlySpan<char> label, out PodAddress address)
    {
        address = default;
        if (label.Count('-') == 3 && !label.ContainsAnyExcept("0123456789-") && TryParseIPv4(label, out address)) return true;
        if (label.ContainsAnyExcept("0123456789abcdef-")) return false;
        Span<ushort> head = stackalloc ushort[8];
        Span<ushort> tail = stackalloc ushort[8];
        int headCount, tailCount = 0;
        var gap = label.IndexOf("--");
        if (gap < 0)
        {
            if (!Groups(label, head, out headCount) || headCount != 8) return false;
        }
        else
        {
            if (!Groups(label[..gap], head, out headCount) || !Groups(label[(gap + 2)..], tail, out tailCount)) return false;
            if (headCount + tailCount > 7) return false;
        }
        UInt128 bits = 0;
        for (var i = 0; i < 8; i++)
        {
            var fromTail = i - (8 - tailCount);
            var group = i < headCount ? head[i] : fromTail >= 0 ? tail[fromTail] : (ushort)0;
            bits = bits << 16 | group;
        }
        address = new PodAddress(bits, IsV6: true);
        return true;
    }

    /// <summary>Four decimal parts without leading zeros, each at most 255.</summary>
    private static bool TryParseIPv4(ReadOnlySpan<char> label, out PodAddress address)
    {
        address = default;
        uint v4 = 0;
        foreach (var range in label.Split('-'))
        {
            var part = label[range];
            if (part.Length is 0 or > 3 || (part.Length > 1 && part[0] == '0')) return false;
            var value = int.Parse(part, NumberStyles.None, CultureInfo.InvariantCulture);
            if (value > 255) return false;
            v4 = v4 << 8 | (uint)value;
        }
        address = new PodAddress(v4, IsV6: false);
        return true;
    }

    /// <summary>Dash-separated groups of one to four hex digits ("" is no group).</summary>
    private static bool Groups(ReadOnlySpan<char> text, Span<ushort> groups, out int count)
    {
        count = 0;
        if (text.IsEmpty) return true;
        foreach (var range in text.Split('-'))
        {
            var part = text[range];
            if (part.Length is 0 or > 4 || count == groups.Length) return false;
            groups[count++] = ushort.Parse(part, NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture);
        }
        return true;
    }
}
