using System.Buffers.Binary;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// The records of one name and type, encoded once as answer records whose owner is a
/// compression pointer to the question (offset 12): answering copies these bytes as they are.
/// </summary>
public sealed class RecordSet
{
    public const ushort QuestionPointer = 0xC00C;

    public RecordSet(DnsType type, IReadOnlyList<(uint Ttl, byte[] Rdata)> records)
    {
        Type = type;
        Count = records.Count;
        var size = records.Sum(r => 12 + r.Rdata.Length);
        var encoded = new byte[size];
        var offset = 0;
        foreach (var (ttl, rdata) in records)
        {
            BinaryPrimitives.WriteUInt16BigEndian(encoded.AsSpan(offset), QuestionPointer);
            BinaryPrimitives.WriteUInt16BigEndian(encoded.AsSpan(offset + 2), (ushort)type);
            BinaryPrimitives.WriteUInt16BigEndian(encoded.AsSpan(offset + 4), 1);
            BinaryPrimitives.WriteUInt32BigEndian(encoded.AsSpan(offset + 6), ttl);
            BinaryPrimitives.WriteUInt16BigEndian(encoded.AsSpan(offset + 10), (ushort)rdata.Length);
            rdata.CopyTo(encoded, offset + 12);
            offset += 12 + rdata.Length;
        }
        Encoded = encoded;
        if (type == DnsType.CNAME && records.Count > 0)
        {
            Span<char> text = stackalloc char[DnsName.MaxWireLength];
            if (DnsName.Read(records[0].Rdata, 0, text, out var length) > 0) Target = text[..length].ToString();
        }
    }

    public DnsType Type { get; }

    public int Count { get; }

    public byte[] Encoded { get; }

    /// <summary>For a CNAME: its target (lower-case, no trailing dot), which answers may chase.</summary>
    public string? Target { get; }
}
