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

    /// <summary>
    /// For SRV and NS: the A and AAAA records of its targets that lie in our zones, encoded for the
    /// additional section (owners written in full), so a client needs no second query (RFC 2782,
    /// RFC 1035 §3.3.11).
    /// Empty when there are none.
    /// </summary>
    public byte[] Additional { get; private set; } = [];

    /// <summary>Records in <see cref="Additional"/>.</summary>
    public int AdditionalCount { get; private set; }

    /// <summary>Fills <see cref="Additional"/> of an SRV or NS set from the address sets of its targets.</summary>
    internal void AddTargetAddresses(Func<string, RecordSet[]?> setsOf)
    {
        if (Type is not (DnsType.SRV or DnsType.NS)) return;
        var targetAt = Type == DnsType.SRV ? 6 : 0;
        Span<char> text = stackalloc char[DnsName.MaxWireLength];
        var targets = new HashSet<string>(StringComparer.Ordinal);
        var additional = new List<byte>();
        var count = 0;
        for (var at = 0; at < Encoded.Length; at += 12 + BinaryPrimitives.ReadUInt16BigEndian(Encoded.AsSpan(at + 10)))
        {
            // SRV RDATA: priority, weight, port, then the target; NS: the name server. Uncompressed.
            if (DnsName.Read(Encoded, at + 12 + targetAt, text, out var length) <= 0) continue;
            var target = text[..length].ToString();
            if (!targets.Add(target) || setsOf(target) is not { } sets) continue;
            var owner = DnsName.Encode(target);
            foreach (var set in sets)
            {
                if (set.Type is not (DnsType.A or DnsType.AAAA)) continue;
                for (var r = 0; r < set.Encoded.Length; r += 12 + BinaryPrimitives.ReadUInt16BigEndian(set.Encoded.AsSpan(r + 10)))
                {
                    additional.AddRange(owner);
                    additional.AddRange(set.Encoded.AsSpan(r + 2, 10 + BinaryPrimitives.ReadUInt16BigEndian(set.Encoded.AsSpan(r + 10))));
                    count++;
                }
            }
        }
        Additional = [.. additional];
        AdditionalCount = count;
    }
}
