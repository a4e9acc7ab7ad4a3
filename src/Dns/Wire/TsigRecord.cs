using System.Buffers.Binary;

namespace ControlPlane.Dns.Wire;

/// <summary>
/// TSIG (RFC 8945), as far as a server that holds no keys needs it: a signed query is checked
/// for form (the record is the last of the message and well formed, §5.1) and answered NOTAUTH
/// with an unsigned TSIG record whose error is BADKEY (§5.2.1, §5.3.2), never with data the
/// client would take for a verified answer.
/// </summary>
public static class TsigRecord
{
    /// <summary>The TSIG error of a key the server does not know.</summary>
    public const ushort BadKey = 17;

    /// <summary>
    /// Whether the RDATA at <paramref name="rdata"/> (of <paramref name="length"/> bytes) holds
    /// exactly the fields of a TSIG record: algorithm name, time signed, fudge, MAC, original id,
    /// error, other data.
    /// </summary>
    public static bool Fits(ReadOnlySpan<byte> message, int rdata, int length)
    {
        var end = rdata + length;
        var offset = DnsName.Skip(message, rdata);
        if (offset < 0 || offset + 10 > end) return false;
        // Time signed (6), fudge (2), MAC size (2), the MAC; original id, error, other length (2 each), other data.
        offset += 10;
        offset += BinaryPrimitives.ReadUInt16BigEndian(message[(offset - 2)..]);
        if (offset + 6 > end) return false;
        offset += 6;
        offset += BinaryPrimitives.ReadUInt16BigEndian(message[(offset - 2)..]);
        return offset == end;
    }

    /// <summary>
    /// Writes the answer's TSIG record to a query signed with <paramref name="owner"/>'s key:
    /// the key's name and algorithm, the time signed, fudge and original id as the query gave
    /// them, no MAC, error BADKEY. Names are written in full (the query's compression pointers
    /// mean nothing in the response). Returns its length, or -1 when it does not fit.
    /// </summary>
    public static int WriteBadKey(ReadOnlySpan<byte> query, int owner, int rdata, Span<byte> destination)
    {
        if (DnsName.Expand(query, owner, destination, out var written) < 0) return -1;
        if (written + 10 > destination.Length) return -1;
        BinaryPrimitives.WriteUInt16BigEndian(destination[written..], 250);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(written + 2)..], (ushort)DnsType.ANY);
        BinaryPrimitives.WriteUInt32BigEndian(destination[(written + 4)..], 0);
        var lengthAt = written + 8;
        var start = written + 10;
        var afterAlgorithm = DnsName.Expand(query, rdata, destination[start..], out var algorithm);
        if (afterAlgorithm < 0) return -1;
        var at = start + algorithm;
        if (at + 16 > destination.Length) return -1;
        // Time signed (6) and fudge (2), then the MAC size, then the original id past the MAC.
        query.Slice(afterAlgorithm, 8).CopyTo(destination[at..]);
        var macSize = BinaryPrimitives.ReadUInt16BigEndian(query[(afterAlgorithm + 8)..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(at + 8)..], 0);
        query.Slice(afterAlgorithm + 10 + macSize, 2).CopyTo(destination[(at + 10)..]);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(at + 12)..], BadKey);
        BinaryPrimitives.WriteUInt16BigEndian(destination[(at + 14)..], 0);
        var end = at + 16;
        BinaryPrimitives.WriteUInt16BigEndian(destination[lengthAt..], (ushort)(end - start));
        return end;
    }
}
