using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Contracts.Addressing;

/// <summary>A refused field: the field's path and the reason, as the server reports it (INVALID_ARGUMENT).</summary>
public readonly record struct FieldProblem(string Field, string Reason);

/// <summary>
/// The server's rules for the addresses and prefixes of objects, field by field: the grains throw
/// the problem as INVALID_ARGUMENT naming its field, netctl reports it before it sends anything,
/// so both say the same for the same input. Rules that depend on the server's configuration or on
/// other objects (service ranges, overlaps, free addresses) are not here.
/// </summary>
public static class AddressRules
{
    /// <summary>The longest block (and so network) of a family: /30 and /126, leaving room for a gateway and a VTEP.</summary>
    public static int LongestBlock(AddressFamily family) => (family == AddressFamily.InterNetwork ? 32 : 128) - 2;

    /// <summary>
    /// The shortest block length of a network: its own length (one block, for one node), and at
    /// least /1, so that a block's size fits 128 bits. No network is ever /0: it would hold
    /// loopback (<see cref="SpecialRanges"/>).
    /// </summary>
    public static int ShortestBlock(IpPrefix network) => Math.Max(network.Length, 1);

    /// <summary>
    /// A network's range (<c>spec.ipv4_cidr</c> or <c>spec.ipv6_cidr</c>) and its block length: a
    /// prefix of the field's family, with room for a block (at most /30 or /126), overlapping no
    /// special range (loopback, link-local, multicast, ...); a block length, when set, between the
    /// network's own length and the longest. Null when both hold.
    /// </summary>
    public static FieldProblem? NetworkRange(string field, string cidr, AddressFamily family, uint blockLength, string blockField)
    {
        if (IpPrefix.Parse(cidr, out var problem) is not { } prefix) return new(field, problem!);
        if (prefix.Family != family)
        {
            return new(field, $"{Echo.Quote(cidr)} is not an {(family == AddressFamily.InterNetwork ? "IPv4" : "IPv6")} prefix");
        }
        var longest = LongestBlock(family);
        if (prefix.Length > longest) return new(field, $"/{prefix.Length} is too small for a network (at most /{longest})");
        if (SpecialRanges.Problem(prefix) is { } special) return new(field, special);
        if (blockLength != 0 && (blockLength < ShortestBlock(prefix) || blockLength > longest))
        {
            return new(blockField, $"/{blockLength} must lie between the network's /{ShortestBlock(prefix)} and /{longest}");
        }
        return null;
    }

    /// <summary>A node's <c>spec.underlay_ip</c>: a plain address (see <see cref="HostAddresses.Parse"/>) outside the special ranges.</summary>
    public static IPAddress? UnderlayAddress(string text, out string? problem)
    {
        if (HostAddresses.Parse(text, out problem) is not { } address) return null;
        problem = SpecialRanges.Problem(address);
        return problem is null ? address : null;
    }
}
