using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// Reverse names (RFC 1035 §3.5 in-addr.arpa, RFC 3596 ip6.arpa) and the reverse zones that cover
/// an address range exactly. One code path for both families: a label is a unit of the address,
/// eight bits written in decimal for IPv4 and four bits (a nibble) in hex for IPv6.
/// </summary>
public static class ReverseZones
{
    /// <summary>d.c.b.a.in-addr.arpa, or the 32 reversed nibbles under ip6.arpa.</summary>
    public static string Name(IPAddress address)
    {
        var bytes = address.GetAddressBytes();
        return Labels(bytes, bytes.Length == 4 ? 4 : 32);
    }

    /// <summary>
    /// The apexes of the zones that together hold exactly the reverse names of
    /// <paramref name="range"/>: one when its prefix ends on a label boundary, otherwise one per
    /// sub-range of the next boundary (10.96.0.0/12 → 96.10.in-addr.arpa … 111.10.in-addr.arpa).
    /// </summary>
    public static IEnumerable<string> Apexes(IPNetwork range)
    {
        var bytes = range.BaseAddress.GetAddressBytes();
        var unit = bytes.Length == 4 ? 8 : 4;
        var units = (range.PrefixLength + unit - 1) / unit;
        var extraBits = units * unit - range.PrefixLength;
        for (var i = 0; i < 1 << extraBits; i++)
        {
            var sub = (byte[])bytes.Clone();
            // Sub-range i: its index in the bits between the prefix and the label boundary.
            for (var bit = 0; bit < extraBits; bit++)
            {
                if ((i >> bit & 1) == 0) continue;
                var position = units * unit - 1 - bit; // from the most significant bit
                sub[position / 8] |= (byte)(0x80 >> (position % 8));
            }
            yield return Labels(sub, units);
        }
    }

    private static string Labels(byte[] bytes, int units)
    {
        var v4 = bytes.Length == 4;
        var builder = new StringBuilder(74);
        for (var i = units - 1; i >= 0; i--)
        {
            if (v4) builder.Append(bytes[i]);
            else builder.Append("0123456789abcdef"[i % 2 == 0 ? bytes[i / 2] >> 4 : bytes[i / 2] & 0xF]);
            builder.Append('.');
        }
        return builder.Append(v4 ? "in-addr.arpa" : "ip6.arpa").ToString();
    }

    /// <summary>Parses a range such as 10.96.0.0/16 or fd00:96::/112; an address with bits set past the prefix is refused.</summary>
    public static bool TryParseRange(string text, out IPNetwork range)
    {
        var slash = text.IndexOf('/');
        return IPNetwork.TryParse(text, out range) && slash > 0
            && IPAddress.TryParse(text.AsSpan(0, slash), out var address) && address.Equals(range.BaseAddress)
            && address.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6;
    }
}
