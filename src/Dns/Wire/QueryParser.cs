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

/// <summary>
/// Parses a query message: header, the one question, and an OPT and a TSIG record if present. A query this
/// server refuses to handle (another opcode: NOTIMP; not exactly one question: FORMERR) is still
/// read through when it is well formed, so that the error echoes its question (when it has one)
/// and its OPT record (RFC 6891 §7: a response to a request with OPT carries one).
/// <see cref="DnsQuery.QuestionEnd"/> is the header's end when there is no question to echo.
/// </summary>
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
        query.QuestionEnd = HeaderLength;
        var outcome = ReadBody(message, name, ref query);
        var single = BinaryPrimitives.ReadUInt16BigEndian(message[4..]) == 1;
        if (outcome != ParseOutcome.Ok || !single)
        {
            // No question to echo; and nothing at all of a malformed message.
            (query.QuestionEnd, query.NameLength, query.Type, query.Class) = (HeaderLength, 0, 0, 0);
            if (outcome != ParseOutcome.Ok) (query.HasOpt, query.TsigOwner) = (false, 0);
        }
        // MAILA and MAILB are obsolete query types no server implements any more (BIND: NOTIMP).
        return query.Opcode != 0 ? ParseOutcome.NotImp
            : outcome != ParseOutcome.Ok ? outcome
            : !single ? ParseOutcome.FormErr
            : (DnsType)query.Type is DnsType.MAILA or DnsType.MAILB ? ParseOutcome.NotImp : ParseOutcome.Ok;
    }

    private static ParseOutcome ReadBody(ReadOnlySpan<byte> message, Span<char> name, ref DnsQuery query)
    {
        var qd = BinaryPrimitives.ReadUInt16BigEndian(message[4..]);
        var an = BinaryPrimitives.ReadUInt16BigEndian(message[6..]);
        var ns = BinaryPrimitives.ReadUInt16BigEndian(message[8..]);
        var ar = BinaryPrimitives.ReadUInt16BigEndian(message[10..]);
        var offset = HeaderLength;
        for (var i = 0; i < qd; i++)
        {
            offset = i == 0 ? DnsName.Read(message, offset, name, out query.NameLength) : DnsName.Skip(message, offset);
            if (offset < 0 || offset + 4 > message.Length) return ParseOutcome.FormErr;
            if (i == 0)
            {
                query.Type = BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
                query.Class = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..]);
                query.QuestionEnd = offset + 4;
                // OPT, TSIG and TKEY are records of a message, never a question's subject (RFC 6891
                // §6.1.1, RFC 8945, RFC 6895 §3.1).
                if ((DnsType)query.Type is DnsType.OPT or DnsType.TSIG or DnsType.TKEY) return ParseOutcome.FormErr;
            }
            offset += 4;
        }

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
            var rdata = offset + 10;
            offset = rdata + rdLength;
            if (offset > message.Length) return ParseOutcome.FormErr;
            if (type == (ushort)DnsType.OPT && !OptionsFit(message[rdata..offset])) return ParseOutcome.FormErr;
            if (type == (ushort)DnsType.TSIG)
            {
                // The last record of the message, of class ANY, well formed (RFC 8945 §4.2, §5.1).
                var recordClass = BinaryPrimitives.ReadUInt16BigEndian(message[(rdata - 8)..]);
                if (i != ar - 1 || recordClass != (ushort)DnsType.ANY || !TsigRecord.Fits(message, rdata, rdLength)) return ParseOutcome.FormErr;
                (query.TsigOwner, query.TsigData) = (start, rdata);
            }
        }
        // The counts say where the message ends: bytes after that belong to no record.
        return offset == message.Length ? ParseOutcome.Ok : ParseOutcome.FormErr;
    }

    /// <summary>An OPT record's data is a sequence of options (code, length, value) that fills it exactly (RFC 6891 §6.1.2).</summary>
    private static bool OptionsFit(ReadOnlySpan<byte> options)
    {
        while (options.Length > 0)
        {
            if (options.Length < 4) return false;
            var length = BinaryPrimitives.ReadUInt16BigEndian(options[2..]);
            if (options.Length < 4 + length) return false;
            options = options[(4 + length)..];
        }
        return true;
    }

    /// <summary>
    /// Skips an answer or authority record; -1 when it is malformed, an OPT or a TSIG (which
    /// belong only in the additional section, RFC 6891 §6.1.1, RFC 8945 §5.1).
    /// </summary>
    private static int SkipRecord(ReadOnlySpan<byte> message, int offset)
    {
        offset = DnsName.Skip(message, offset);
        if (offset < 0 || offset + 10 > message.Length) return -1;
        if (BinaryPrimitives.ReadUInt16BigEndian(message[offset..]) is (ushort)DnsType.OPT or (ushort)DnsType.TSIG) return -1;
        var rdLength = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
        offset += 10 + rdLength;
        return offset > message.Length ? -1 : offset;
    }
}
