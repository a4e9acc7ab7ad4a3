using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Contracts.Addressing;

/// <summary>
/// Parsing of single addresses given by users: canonical forms only, one rule for both families,
/// shared by the server and netctl's checks (each reports the returned reason for its field).
/// </summary>
public static class HostAddresses
{
    /// <summary>Longest echo of a caller's value inside a message (the server's ControlPlaneException.MaxEcho).</summary>
    public const int MaxEcho = 64;

    /// <summary>
    /// An IPv4 address in dotted-quad form (four decimal parts, no leading zeros) or an IPv6
    /// address without a zone or a mapped IPv4; returned in canonical form. Anything else: null
    /// and the reason.
    /// </summary>
    public static IPAddress? Parse(string text, out string? problem)
    {
        if (!IPAddress.TryParse(text, out var address) || !IsCanonicalInput(text, address))
        {
            problem = $"{Quote(text)} is not an IPv4 (dotted quad) or IPv6 address";
            return null;
        }
        problem = null;
        return address;
    }

    /// <summary>
    /// Whether <paramref name="text"/>, which parsed as <paramref name="address"/>, is written the way
    /// every other tool reads it: IPv4 as a dotted quad, IPv6 without a zone or a mapped IPv4.
    /// </summary>
    public static bool IsCanonicalInput(ReadOnlySpan<char> text, IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            // A zone ("%eth0") names an interface of one host, not an address of the network.
            return address.ScopeId == 0 && !text.Contains('%') && !address.IsIPv4MappedToIPv6;
        }
        // IPAddress also reads "1", "1.2.3", "0x7f.1" and "010.1.1.1" (octal): only the plain form is an address here.
        var parts = 0;
        foreach (var range in text.Split('.'))
        {
            if (++parts > 4 || !IsDecimal(text[range], 3)) return false;
        }
        return parts == 4;
    }

    /// <summary>1 to <paramref name="maxDigits"/> ASCII digits, with no leading zero unless the number is 0.</summary>
    public static bool IsDecimal(ReadOnlySpan<char> text, int maxDigits) =>
        text.Length > 0 && text.Length <= maxDigits && !text.ContainsAnyExceptInRange('0', '9') && (text.Length == 1 || text[0] != '0');

    /// <summary>
    /// A caller's value quoted for a message, cut to <see cref="MaxEcho"/> characters, as the
    /// server quotes it (an error that echoes a huge value would outgrow gRPC's header limits).
    /// </summary>
    public static string Quote(string value) => value.Length <= MaxEcho
        ? $"'{value}'"
        : $"'{value[..MaxEcho]}…' ({value.Length} characters)";
}
