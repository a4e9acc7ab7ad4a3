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

    private int _turn;

    /// <summary>
    /// Which record an answer starts with. Address sets rotate, one record per answer (as BIND's
    /// cyclic order and CoreDNS's loadbalance do), so clients that take the first address of a
    /// headless service spread over its endpoints; other sets keep their order.
    /// </summary>
    public int NextFirst() =>
        Count > 1 && Type is DnsType.A or DnsType.AAAA ? (int)((uint)Interlocked.Increment(ref _turn) % (uint)Count) : 0;

    public byte[] Encoded { get; }

    /// <summary>For a CNAME: its target (lower-case, no trailing dot), which answers may chase.</summary>
    public string? Target { get; }

    /// <summary>
    /// For SRV and NS: the A and AAAA record sets of its targets that lie in our zones, for the
    /// additional section, so a client needs no second query (RFC 2782, RFC 1035 §3.3.11).
    /// Empty when there are none.
    /// </summary>
    private AdditionalSet[] _additional = [];

    /// <summary>Records of the sets for the additional section.</summary>
    public int AdditionalCount { get; private set; }

    /// <summary>
    /// One target's A or AAAA records: where the target's name starts inside <see cref="Encoded"/>
    /// (each owner is then a pointer to it in the answer), the name in full (for when the
    /// answer lies too far into the message for a pointer), and each record after its owner.
    /// </summary>
    private sealed record AdditionalSet(int TargetOffset, byte[] Owner, byte[] Records, int Count);

    /// <summary>Fills the additional sets of an SRV or NS set from the address sets of its targets.</summary>
    internal void AddTargetAddresses(Func<string, RecordSet[]?> setsOf)
    {
        if (Type is not (DnsType.SRV or DnsType.NS)) return;
        var targetAt = Type == DnsType.SRV ? 6 : 0;
        Span<char> text = stackalloc char[DnsName.MaxWireLength];
        var targets = new HashSet<string>(StringComparer.Ordinal);
        var additional = new List<AdditionalSet>();
        for (var at = 0; at < Encoded.Length; at += 12 + BinaryPrimitives.ReadUInt16BigEndian(Encoded.AsSpan(at + 10)))
        {
            // SRV RDATA: priority, weight, port, then the target; NS: the name server. Uncompressed.
            var nameAt = at + 12 + targetAt;
            if (DnsName.Read(Encoded, nameAt, text, out var length) <= 0) continue;
            var target = text[..length].ToString();
            if (!targets.Add(target) || setsOf(target) is not { } sets) continue;
            var owner = DnsName.Encode(target);
            foreach (var set in sets)
            {
                if (set.Type is not (DnsType.A or DnsType.AAAA) || set.Count == 0) continue;
                var records = new List<byte>();
                for (var r = 0; r < set.Encoded.Length; r += 12 + BinaryPrimitives.ReadUInt16BigEndian(set.Encoded.AsSpan(r + 10)))
                {
                    records.AddRange(set.Encoded.AsSpan(r + 2, 10 + BinaryPrimitives.ReadUInt16BigEndian(set.Encoded.AsSpan(r + 10))));
                }
                additional.Add(new AdditionalSet(nameAt, owner, [.. records], set.Count));
            }
        }
        _additional = [.. additional];
        AdditionalCount = additional.Sum(a => a.Count);
    }

    /// <summary>
    /// Writes the additional sets into <paramref name="message"/> from <paramref name="at"/>, for
    /// this set's records copied to <paramref name="answerAt"/>: each owner a pointer to its target
    /// inside them (RFC 1035 §4.1.4), and only whole sets, as many as fit in the message (a set
    /// that does not fit is left out, not cut: RFC 2181 §9). Returns the records and bytes written.
    /// </summary>
    public (int Count, int Length) WriteAdditional(Span<byte> message, int at, int answerAt)
    {
        var (count, start) = (0, at);
        foreach (var set in _additional)
        {
            var pointer = answerAt + set.TargetOffset;
            var ownerLength = pointer < 0x4000 ? 2 : set.Owner.Length;
            if (at + set.Count * ownerLength + set.Records.Length > message.Length) continue;
            for (var r = 0; r < set.Records.Length; r += 10 + BinaryPrimitives.ReadUInt16BigEndian(set.Records.AsSpan(r + 8)))
            {
                if (ownerLength == 2) BinaryPrimitives.WriteUInt16BigEndian(message[at..], (ushort)(0xC000 | pointer));
                else set.Owner.CopyTo(message[at..]);
                at += ownerLength;
                var record = set.Records.AsSpan(r, 10 + BinaryPrimitives.ReadUInt16BigEndian(set.Records.AsSpan(r + 8)));
                record.CopyTo(message[at..]);
                at += record.Length;
            }
            count += set.Count;
        }
        return (count, at - start);
    }
}
