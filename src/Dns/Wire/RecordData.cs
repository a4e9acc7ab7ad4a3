using System.Buffers;
using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text;

namespace ControlPlane.Dns.Wire;

/// <summary>Converts a record's presentation form (as in a zone file) to RDATA bytes and back.</summary>
public static class RecordData
{
    public static byte[] Encode(DnsType type, string data)
    {
        var fields = Tokenize(data);
        var buffer = new ArrayBufferWriter<byte>(32);
        switch (type)
        {
            case DnsType.A:
            case DnsType.AAAA:
                var address = IPAddress.Parse(Single(fields, type));
                if ((type == DnsType.A) != (address.AddressFamily == AddressFamily.InterNetwork))
                    throw new FormatException($"{address} is not an {type} address");
                return address.GetAddressBytes();
            case DnsType.NS:
            case DnsType.CNAME:
            case DnsType.PTR:
                DnsName.Write(buffer, Single(fields, type));
                break;
            case DnsType.SOA:
                Expect(fields, 7, type);
                DnsName.Write(buffer, fields[0]);
                DnsName.Write(buffer, fields[1]);
                for (var i = 2; i < 7; i++) WriteUInt32(buffer, uint.Parse(fields[i], CultureInfo.InvariantCulture));
                break;
            case DnsType.SRV:
                Expect(fields, 4, type);
                for (var i = 0; i < 3; i++) WriteUInt16(buffer, ushort.Parse(fields[i], CultureInfo.InvariantCulture));
                DnsName.Write(buffer, fields[3]);
                break;
            case DnsType.TXT:
                if (fields.Count == 0) throw new FormatException("TXT needs at least one string");
                foreach (var text in fields)
                {
                    var bytes = Encoding.UTF8.GetBytes(text);
                    if (bytes.Length > 255) throw new FormatException("TXT strings are at most 255 bytes");
                    buffer.Write([(byte)bytes.Length]);
                    buffer.Write(bytes);
                }
                break;
            default:
                throw new FormatException($"type {type} is not supported");
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Splits presentation data on blanks; double-quoted strings stay whole (quotes removed).</summary>
    public static List<string> Tokenize(string data)
    {
        var fields = new List<string>();
        var i = 0;
        while (i < data.Length)
        {
            if (char.IsWhiteSpace(data[i])) { i++; continue; }
            if (data[i] == '"')
            {
                var text = new StringBuilder();
                for (i++; i < data.Length && data[i] != '"'; i++)
                {
                    if (data[i] == '\\' && i + 1 < data.Length) i++;
                    text.Append(data[i]);
                }
                i++;
                fields.Add(text.ToString());
                continue;
            }
            var start = i;
            while (i < data.Length && !char.IsWhiteSpace(data[i])) i++;
            fields.Add(data[start..i]);
        }
        return fields;
    }

    private static string Single(List<string> fields, DnsType type)
    {
        Expect(fields, 1, type);
        return fields[0];
    }

    private static void Expect(List<string> fields, int count, DnsType type)
    {
        if (fields.Count != count) throw new FormatException($"{type} data needs {count} field(s), got {fields.Count}");
    }

    private static void WriteUInt16(ArrayBufferWriter<byte> buffer, ushort value)
    {
        BinaryPrimitives.WriteUInt16BigEndian(buffer.GetSpan(2), value);
        buffer.Advance(2);
    }

    private static void WriteUInt32(ArrayBufferWriter<byte> buffer, uint value)
    {
        BinaryPrimitives.WriteUInt32BigEndian(buffer.GetSpan(4), value);
        buffer.Advance(4);
    }
}
