using System.Buffers.Binary;

namespace ControlPlane.Dns.Wire;

public enum ParseOutcome : byte
{
    Ok,
    /// <summary>Not answerable at all (too short, or a response): drop it silently.</summary>
    Drop,
    FormErr,
    NotImp,
}

/// <summary>Parses a query message: header, the one question, and an OPT record if present.</summary>
public static class QueryParser
{
    public const int HeaderLength = 12;

    public static ParseOutcome Parse(ReadOnlySpan<byte> message, Span<char> name, out DnsQuery query)
    {
        query = default;
        if (message.Length < HeaderLength) return ParseOutcome.Drop;
        query.Id = BinaryPrimitives.ReadUInt16BigEndian(message);
        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        if ((flags & 0x8000) != 0) return ParseOutcome.Drop;
        query.Opcode = (byte)((flags >> 11) & 0xF);
        query.RecursionDesired = (flags & 0x0100) != 0;
        query.CheckingDisabled = (flags & 0x0010) != 0;
        if (query.Opcode != 0) return ParseOutcome.NotImp;
        var qd = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var an = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var ns = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        var ar = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        if (qd != 1) return ParseOutcome.FormErr;

        var offset = DnsName.Read(message, HeaderLength, name, out query.NameLength);
        if (offset < 0 || offset + 4 > message.Length) return ParseOutcome.FormErr;
        query.Type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
        query.Class = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
        offset += 4;
        query.QuestionEnd = offset;

        for (var i = 0; i < an + ns; i++)
        {
            offset = SkipRecord(message, offset);
            if (offset < 0) return ParseOutcome.FormErr;
        }
        for (var i = 0; i < ar; i++)
        {
            var start = offset;
            offset = DnsName.Skip(message, offset);
            if (offset < 0 || offset + 10 > message.Length) return ParseOutcome.FormErr;
            var type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            if (type == (ushort)DnsType.OPT)
            {
                // One OPT, owned by the root (RFC 6891 §6.1.1).
                if (query.HasOpt || offset != start + 1) return ParseOutcome.FormErr;
                query.HasOpt = true;
                query.UdpPayloadSize = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
                query.EdnsVersion = message[offset + 5];
                query.DnssecOk = (message[offset + 6] & 0x80) != 0;
            }
            var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10 + rdLength;
            if (offset > message.Length) return ParseOutcome.FormErr;
        }
        return ParseOutcome.Ok;
    }

    private static int SkipRecord(ReadOnlySpan<byte> message, int offset)
    {
        offset = DnsName.Skip(message, offset);
        if (offset < 0 || offset + 10 > message.Length) return -1;
        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
        offset += 10 + rdLength;
        return offset > message.Length ? -1 : offset;
    }
}
