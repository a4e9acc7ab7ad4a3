using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Contracts.Addressing;

/// <summary>
/// Parsing of single addresses given by users: canonical forms only, one rule for both families,
/// shared by the server and netctl's checks (each reports the returned reason for its field).
/// </summary>
public static class HostAddresses
{
    /// <summary>
    /// An IPv4 address in dotted-quad form (four decimal parts, no leading zeros) or an IPv6
    /// address without a zone or a mapped IPv4; returned in canonical form. Anything else: null
    /// and the reason.
    /// </summary>
    public static IPAddress? Parse(string text, out string? problem)
    {
        if (!IPAddress.TryParse(text, out var address) || !IsPlainForm(text, address))
        {
            problem = $"{Echo.Quote(text)} is not an IPv4 (dotted quad) or IPv6 address";
            return null;
        }
        if (Unusual(text, address) is { } reason)
        {
            problem = $"{Echo.Quote(text)} {reason}";
            return null;
        }
        problem = null;
        return address;
    }

    /// <summary>
    /// Whether <paramref name="text"/>, which parsed as <paramref name="address"/>, is a plain
    /// address form: IPAddress also reads "1", "1.2.3", "0x7f.1" and "010.1.1.1" (octal), and
    /// only the dotted quad of decimal parts is an IPv4 address here.
    /// </summary>
    public static bool IsPlainForm(ReadOnlySpan<char> text, IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6) return true;
        var parts = 0;
        foreach (var range in text.Split('.'))
        {
            if (++parts > 4 || !IsDecimal(text[range], 3)) return false;
        }
        return parts == 4;
    }

    /// <summary>
    /// Why an address in plain form is still not one of the network ("is …", "has …"), or null:
    /// a mapped IPv4 is written as itself, and a zone ("%eth0") names an interface of one host.
    /// </summary>
    public static string? Unusual(ReadOnlySpan<char> text, IPAddress address)
    {
        if (address.AddressFamily != AddressFamily.InterNetworkV6) return null;
        if (address.IsIPv4MappedToIPv6) return $"is an IPv4-mapped IPv6 address: write the IPv4 address itself ({address.MapToIPv4()})";
        if (address.ScopeId != 0 || text.Contains('%')) return "has a zone (%…): it names an interface of one host, not an address of the network";
        return null;
    }

    /// <summary>1 to <paramref name="maxDigits"/> ASCII digits, with no leading zero unless the number is 0.</summary>
    public static bool IsDecimal(ReadOnlySpan<char> text, int maxDigits) =>
        text.Length > 0 && text.Length <= maxDigits && !text.ContainsAnyExceptInRange('0', '9') && (text.Length == 1 || text[0] != '0');
}
