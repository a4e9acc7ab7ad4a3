using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Contracts.Policy;

/// <summary>
/// An inclusive range of addresses of one family, as 128-bit numbers (IPv4 in the low 32 bits),
/// so IPv4 and IPv6 share every computation on ranges.
/// </summary>
public readonly record struct AddressRange(bool V6, UInt128 First, UInt128 Last)
{
    public static AddressRange Single(IPAddress address)
    {
        var n = ToNumber(address);
        return new(address.AddressFamily == AddressFamily.InterNetworkV6, n, n);
    }

    public static AddressRange All(bool v6) => new(v6, UInt128.Zero, v6 ? UInt128.MaxValue : uint.MaxValue);

    /// <summary>
    /// Why <paramref name="except"/> cannot be an exception of the ipBlock <paramref name="cidr"/>
    /// (both valid "address/length"); null when it lies strictly within it. One rule for the
    /// server and netctl's checks, both families alike.
    /// </summary>
    public static string? ExceptProblem(string cidr, string except)
    {
        if (ParseCidr(cidr) is not { } outer || ParseCidr(except) is not { } inner) return null;
        if (inner.V6 != outer.V6) return $"{except} is {Family(inner.V6)} and {cidr} is {Family(outer.V6)}: an exception is of its block's family";
        return inner.First < outer.First || inner.Last > outer.Last || inner == outer ? $"{except} must lie strictly within {cidr}" : null;
    }

    private static string Family(bool v6) => v6 ? "IPv6" : "IPv4";

    /// <summary>"address/length"; null when it is not one.</summary>
    public static AddressRange? ParseCidr(string cidr)
    {
        var slash = cidr.IndexOf('/');
        if (slash < 0 || !IPAddress.TryParse(cidr.AsSpan(0, slash), out var address) || !int.TryParse(cidr.AsSpan(slash + 1), out var length)) return null;
        var v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        var bits = v6 ? 128 : 32;
        if (length < 0 || length > bits) return null;
        // A shift by 128 is a shift by 0 (the count is taken mod 128): ::/0 is every address.
        var host = length == bits ? UInt128.Zero : bits - length == 128 ? UInt128.MaxValue : (UInt128.One << (bits - length)) - 1;
        var first = ToNumber(address) & ~host;
        return new(v6, first, first | host);
    }

    public bool Contains(IPAddress address) =>
        (address.AddressFamily == AddressFamily.InterNetworkV6) == V6 && ToNumber(address) >= First && ToNumber(address) <= Last;

    public bool Contains(AddressRange other) => other.V6 == V6 && other.First >= First && other.Last <= Last;

    /// <summary>This range without the given ones, as disjoint ranges in order.</summary>
    public List<AddressRange> Except(IEnumerable<AddressRange> holes)
    {
        var result = new List<AddressRange>();
        var self = this;
        var next = First;
        var done = false;
        foreach (var hole in holes.Where(h => h.V6 == self.V6 && h.Last >= self.First && h.First <= self.Last).OrderBy(h => h.First))
        {
            if (hole.First > next) result.Add(this with { First = next, Last = hole.First - 1 });
            if (hole.Last >= Last)
            {
                done = true;
                break;
            }
            if (hole.Last + 1 > next) next = hole.Last + 1;
        }
        if (!done && next <= Last) result.Add(this with { First = next });
        return result;
    }

    public static UInt128 ToNumber(IPAddress address)
    {
        Span<byte> bytes = stackalloc byte[16];
        address.TryWriteBytes(bytes, out var written);
        UInt128 n = 0;
        for (var i = 0; i < written; i++) n = (n << 8) | bytes[i];
        return n;
    }

    /// <summary>Writes the number as an address of this range's family (4 or 16 bytes, network order).</summary>
    public void Write(UInt128 number, Span<byte> destination)
    {
        var width = V6 ? 16 : 4;
        for (var i = width - 1; i >= 0; i--)
        {
            destination[i] = (byte)(number & 0xff);
            number >>= 8;
        }
    }

    public override string ToString()
    {
        Span<byte> a = stackalloc byte[V6 ? 16 : 4], b = stackalloc byte[V6 ? 16 : 4];
        Write(First, a);
        Write(Last, b);
        return First == Last ? new IPAddress(a).ToString() : $"{new IPAddress(a)}-{new IPAddress(b)}";
    }
}
