using System.Net;
using System.Net.Sockets;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Ipam;

/// <summary>Parsing of single addresses given by users: canonical forms only, one rule for both families.</summary>
public static class Addresses
{
    /// <summary>
    /// An IPv4 address in dotted-quad form (four decimal parts, no leading zeros) or an IPv6
    /// address without a zone; returned in canonical form. Anything else is INVALID_ARGUMENT.
    /// </summary>
    public static IPAddress ParseHost(string field, string text)
    {
        if (!IPAddress.TryParse(text, out var address) || !IsCanonicalInput(text, address))
        {
            throw ControlPlaneException.Invalid(field, $"{ControlPlaneException.Quote(text)} is not an IPv4 (dotted quad) or IPv6 address");
        }
        return address;
    }

    private static bool IsCanonicalInput(string text, IPAddress address)
    {
        if (address.AddressFamily == AddressFamily.InterNetworkV6)
        {
            // A zone ("%eth0") names an interface of one host, not an address of the network.
            return address.ScopeId == 0 && !text.Contains('%') && !address.IsIPv4MappedToIPv6;
        }
        // IPAddress also reads "1", "1.2.3", "0x7f.1" and "010.1.1.1" (octal): only the plain form is an address here.
        var parts = text.Split('.');
        return parts.Length == 4 && parts.All(p => p.Length is > 0 and <= 3 && p.All(char.IsAsciiDigit) && (p.Length == 1 || p[0] != '0'));
    }
}
