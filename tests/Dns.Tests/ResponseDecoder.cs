using System.Buffers.Binary;
using System.Net;
using System.Text;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Tests;

/// <summary>Test-side decoder: a response as header fields and records in zone-file text.</summary>
internal sealed record DecodedResponse(ushort Id, bool Authoritative, bool Truncated, int Rcode, string Question,
    List<string> Answer, List<string> Authority, bool HasOpt, List<string> Additional)
{
    public static DecodedResponse Decode(ReadOnlySpan<byte> message)
    {
        var flags = BinaryPrimitives.ReadUInt16BigEndian(message[2..]);
        var counts = new int[4];
        for (var i = 0; i < 4; i++) counts[i] = BinaryPrimitives.ReadUInt16BigEndian(message[(4 + 2 * i)..]);
        var offset = 12;
        var question = "";
        if (counts[0] == 1)
        {
            question = ReadName(message, ref offset);
            offset += 4;
        }
        var answer = ReadRecords(message, ref offset, counts[1], out _);
        var authority = ReadRecords(message, ref offset, counts[2], out _);
        var additional = ReadRecords(message, ref offset, counts[3], out var opt);
        return new DecodedResponse(BinaryPrimitives.ReadUInt16BigEndian(message), (flags & 0x0400) != 0, (flags & 0x0200) != 0,
            flags & 0xF, question, answer, authority, opt, additional);
    }

    private static List<string> ReadRecords(ReadOnlySpan<byte> message, ref int offset, int count, out bool opt)
    {
        opt = false;
        var records = new List<string>();
        for (var i = 0; i < count; i++)
        {
            var owner = ReadName(message, ref offset);
            var type = (DnsType)BinaryPrimitives.ReadUInt16BigEndian(message[offset..]);
            var ttl = BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4)..]);
            var length = BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 8)..]);
            offset += 10;
            var rdata = offset;
            offset += length;
            if (type == DnsType.OPT) { opt = true; continue; }
            records.Add($"{owner}. {ttl} IN {type} {Rdata(message, type, rdata, length)}");
        }
        return records;
    }

    private static string Rdata(ReadOnlySpan<byte> message, DnsType type, int offset, int length)
    {
        switch (type)
        {
            case DnsType.A:
            case DnsType.AAAA:
                return new IPAddress(message.Slice(offset, length)).ToString();
            case DnsType.NS:
            case DnsType.CNAME:
            case DnsType.PTR:
                return ReadName(message, ref offset) + ".";
            case DnsType.SRV:
                var srv = $"{BinaryPrimitives.ReadUInt16BigEndian(message[offset..])} {BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 2)..])} {BinaryPrimitives.ReadUInt16BigEndian(message[(offset + 4)..])}";
                offset += 6;
                return srv + " " + ReadName(message, ref offset) + ".";
            case DnsType.SOA:
                var mname = ReadName(message, ref offset);
                var rname = ReadName(message, ref offset);
                var numbers = new uint[5];
                for (var i = 0; i < 5; i++) numbers[i] = BinaryPrimitives.ReadUInt32BigEndian(message[(offset + 4 * i)..]);
                return $"{mname}. {rname}. {string.Join(' ', numbers)}";
            case DnsType.TXT:
                return $"\"{Encoding.UTF8.GetString(message.Slice(offset + 1, message[offset]))}\"";
            default:
                return Convert.ToHexString(message.Slice(offset, length));
        }
    }

    private static string ReadName(ReadOnlySpan<byte> message, ref int offset)
    {
        Span<char> text = stackalloc char[255];
        var end = DnsName.Read(message, offset, text, out var length);
        if (end < 0) throw new FormatException("bad name in response");
        offset = end;
        return text[..length].ToString();
    }
}
