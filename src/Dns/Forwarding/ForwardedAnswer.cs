using System.Buffers;
using System.Buffers.Binary;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Forwarding;

/// <summary>
/// An upstream's reply, kept so that it can be shaped for whichever client asks the same
/// question, when it arrives or later from the cache:
/// <list type="bullet">
/// <item>the records (answer, authority, additional) as the upstream compressed them, after the
/// question; the upstream's OPT record is dropped (each client gets its own, RFC 6891 §7);</item>
/// <item>where each record's TTL lies, so every copy counts down by the time since the reply came
/// (RFC 1034 §3.6, RFC 2181 §8);</item>
/// <item>the answer records that belong to the question's alias chain, and the authority
/// section's SOA records, once more with every name written in full (owners and the names in the
/// data of CNAME, NS, PTR, MX, SOA and SRV), for appending after our own aliases in a message
/// whose question differs: a compression pointer would point into the wrong message. The SOA
/// tells a resolver how long it may cache a negative answer at the end of the chain (RFC 2308 §3).</item>
/// </list>
/// The chain's owners and alias targets are kept as text too, and the owners of every other
/// record: a name in our own zones is ours to answer, never the upstream's, so the handler cuts a
/// chain where it comes back into our zones and goes on from our data, and does not relay a reply
/// that carries records about our names (<see cref="OtherOwners"/>).
/// The TTLs are made safe once, in the stored copy, so that every copy written from it is: a TTL
/// with its top bit set counts as 0 (RFC 2181 §8), none exceeds the cache's bound (a client must
/// not keep what we would not), and an SOA in the authority section, which is there to say how
/// long the name's or type's absence may be cached, carries the negative TTL, min(its TTL, its
/// MINIMUM) (RFC 2308 §5, as Unbound and BIND show it); the entry expires with the smallest.
/// The header keeps only what is the upstream's to say: the rcode (with its extended bits) and
/// TC. Parsing allocates; writing allocates nothing.
/// </summary>
public sealed class ForwardedAnswer
{
    private const int HeaderLength = QueryParser.HeaderLength;

    /// <summary>From the question on, OPT removed.</summary>
    private readonly byte[] _message;
    private readonly int _questionLength;
    private readonly int[] _ttls;
    private readonly byte[]? _expanded;
    private readonly int[] _expandedTtls;
    /// <summary>How many of the records in <see cref="_expanded"/> are the authority's SOA records (they follow the answers).</summary>
    private readonly int _expandedAuthority;
    /// <summary>How many of the records in <see cref="_expanded"/> are answer records of the question's chain (they come first).</summary>
    private readonly int _expandedAnswers;
    private readonly ChainRecord[] _chain;
    private readonly string[] _otherOwners;

    /// <summary>
    /// One record of the question's chain in <see cref="_expanded"/>: its owner, where it ends, and
    /// for an alias its target and where that is written in full (-1 for other types).
    /// </summary>
    private readonly record struct ChainRecord(string Owner, int End, string? Target, int TargetAt);

    private ForwardedAnswer(string key, DateTimeOffset received, byte[] message, int questionLength, int[] ttls, byte[]? expanded, int[] expandedTtls,
        ChainRecord[] chain, int expandedAuthority, string[] otherOwners)
    {
        _chain = chain;
        _otherOwners = otherOwners;
        var expandedAnswers = chain.Length;
        _expandedAnswers = expandedAnswers;
        _expandedAuthority = expandedAuthority;
        Key = key;
        Received = received;
        _message = message;
        _questionLength = questionLength;
        _ttls = ttls;
        _expanded = expanded;
        _expandedTtls = expandedTtls;
    }

    /// <summary>The cache key of the question it answers (see <see cref="Forwarder.Key"/>).</summary>
    public string Key { get; }

    public DateTimeOffset Received { get; }

    /// <summary>Received plus the smallest TTL (all of them within the cache's bound): a cached copy is stale from then on.</summary>
    public DateTimeOffset Expires => Received + TimeSpan.FromSeconds(MinimumTtl ?? 0);

    /// <summary>The 4-bit rcode of the header.</summary>
    public Rcode Rcode { get; private init; }

    /// <summary>The upper eight bits of the rcode, from the upstream's OPT (0 without one).</summary>
    public int ExtendedRcode { get; private init; }

    public bool Truncated { get; private init; }

    public bool AuthenticData { get; private init; }

    public int Answers { get; private init; }

    public int Authority { get; private init; }

    public int Additional { get; private init; }

    /// <summary>Smallest TTL of all records, as stored (sanitised, bounded, negative SOAs lowered); null when there are none.</summary>
    public uint? MinimumTtl { get; private init; }

    /// <summary>False when the reply could only be kept in part (its OPT record was not the last record: the additional section is dropped).</summary>
    public bool Whole { get; private init; }

    /// <summary>
    /// Whether <see cref="AppendAnswers"/> can copy the answer records: false when one of them
    /// could not be written in full (a malformed name, or beyond a 64 KiB message).
    /// </summary>
    public bool Appendable => _expanded is not null;

    /// <summary>How many records <see cref="AppendAnswers"/> can copy from the question's chain.</summary>
    public int ChainLength => _expandedAnswers;

    /// <summary>The owner of the chain's record <paramref name="index"/> (lower-case text).</summary>
    public string ChainOwner(int index) => _chain[index].Owner;

    /// <summary>The owners of the records outside the chain, in every section (lower-case text, each once).</summary>
    public ReadOnlySpan<string> OtherOwners => _otherOwners;

    /// <summary>The target of the chain's record <paramref name="index"/> when it is an alias (lower-case text), else null.</summary>
    public string? ChainTarget(int index) => _chain[index].Target;

    /// <summary>
    /// Where the target of the chain's alias <paramref name="index"/> is written in full, counted
    /// from the first record <see cref="AppendAnswers"/> copies: a compression pointer can point
    /// there when our own records for that name follow.
    /// </summary>
    public int ChainTargetAt(int index) => _chain[index].TargetAt;

    /// <summary>Whether a cached copy may still answer at <paramref name="now"/>.</summary>
    public bool FreshAt(DateTimeOffset now) => now < Expires;

    /// <summary>
    /// Reads a reply whose header and question the caller has checked; null when a record is
    /// malformed. <paramref name="maxTtl"/> is the cache's bound: no TTL stored exceeds it.
    /// </summary>
    public static ForwardedAnswer? Parse(ReadOnlySpan<byte> upstreamReply, string key, DateTimeOffset received, TimeSpan maxTtl)
    {
        if (upstreamReply.Length < HeaderLength || BinaryPrimitives.ReadUInt16BigEndian(upstreamReply[4..]) != 1) return null;
        // A copy whose TTLs are rewritten record by record before anything is kept of the record.
        Span<byte> reply = upstreamReply.ToArray();
        var questionEnd = DnsName.Skip(reply, HeaderLength);
        if (questionEnd < 0 || questionEnd + 4 > reply.Length) return null;
        questionEnd += 4;
        int an = BinaryPrimitives.ReadUInt16BigEndian(reply[6..]), ns = BinaryPrimitives.ReadUInt16BigEndian(reply[8..]), ar = BinaryPrimitives.ReadUInt16BigEndian(reply[10..]);
        if (Chain(reply, questionEnd, an) is not (var inChain, var owners, var targets)) return null;
        var chain = new List<ChainRecord>();
        var others = new HashSet<string>(StringComparer.Ordinal);
        Span<char> text = stackalloc char[DnsName.MaxWireLength];
        var bound = (uint)Math.Clamp(maxTtl.TotalSeconds, 0, int.MaxValue);
        var ttls = new List<int>();
        var expandedTtls = new List<int>();
        var expanded = new ArrayBufferWriter<byte>(reply.Length);
        var expandable = true;
        var soas = 0;
        var additionalStart = 0;
        var (optStart, optEnd, extended) = (-1, -1, 0);
        var misplaced = false;
        uint? minimum = null;
        var offset = questionEnd;
        for (var i = 0; i < an + ns + ar; i++)
        {
            if (i == an + ns) additionalStart = offset;
            var start = offset;
            var fixedAt = DnsName.Skip(reply, offset);
            if (fixedAt < 0 || fixedAt + 10 > reply.Length) return null;
            var type = BinaryPrimitives.ReadUInt16BigEndian(reply[fixedAt..]);
            var rdata = fixedAt + 10;
            offset = rdata + BinaryPrimitives.ReadUInt16BigEndian(reply[(fixedAt + 8)..]);
            if (offset > reply.Length) return null;
            if (type == (ushort)DnsType.OPT)
            {
                if (i < an + ns || optStart >= 0) return null;
                (optStart, optEnd, extended) = (start, offset, reply[fixedAt + 4]);
                continue;
            }
            if (optStart >= 0) misplaced = true; // a record after the OPT
            ttls.Add(fixedAt + 4 - HeaderLength);
            var ttl = Ttl(reply, fixedAt, rdata, offset, negativeSoa: type == (ushort)DnsType.SOA && i >= an && i < an + ns, bound);
            BinaryPrimitives.WriteUInt32BigEndian(reply[(fixedAt + 4)..], ttl);
            minimum = minimum is null ? ttl : Math.Min(minimum.Value, ttl);
            if (i < an && inChain[i])
            {
                // Only the chain's records may follow our aliases in an authoritative answer (RFC 2181 §5.4.1).
                if (!expandable) continue;
                expandable = ExpandRecord(reply, start, fixedAt, rdata, offset, expanded, expandedTtls, out var dataAt);
                var alias = type == (ushort)DnsType.CNAME;
                chain.Add(new ChainRecord(owners[i], expanded.WrittenCount, alias ? targets[i] : null, alias ? dataAt : -1));
                continue;
            }
            if (DnsName.Read(reply, start, text, out var ownerLength) < 0) return null;
            others.Add(new string(text[..ownerLength]));
            if (i >= an && i < an + ns && type == (ushort)DnsType.SOA && expandable)
            {
                expandable = ExpandRecord(reply, start, fixedAt, rdata, offset, expanded, expandedTtls, out _);
                soas++;
            }
        }
        var recordsEnd = offset;
        byte[] message;
        if (misplaced)
        {
            // Keep answer and authority only: cutting the OPT out could break pointers behind it.
            message = reply[HeaderLength..additionalStart].ToArray();
            ttls.RemoveAll(t => t + HeaderLength >= additionalStart);
            ar = 0;
        }
        else if (optStart >= 0)
        {
            message = reply[HeaderLength..optStart].ToArray();
            ar--;
        }
        else
        {
            message = reply[HeaderLength..recordsEnd].ToArray();
        }
        var flags = BinaryPrimitives.ReadUInt16BigEndian(reply[2..]);
        return new ForwardedAnswer(key, received, message, questionEnd - HeaderLength, [.. ttls], expandable ? expanded.WrittenSpan.ToArray() : null, [.. expandedTtls], [.. chain], soas, [.. others])
        {
            Rcode = (Rcode)(flags & 0xF),
            ExtendedRcode = extended,
            Truncated = (flags & 0x0200) != 0,
            AuthenticData = (flags & 0x0020) != 0,
            Answers = an,
            Authority = ns,
            Additional = ar,
            MinimumTtl = minimum,
            Whole = !misplaced,
        };
    }

    /// <summary>
    /// The TTL to store for the record whose fixed fields start at <paramref name="fixedAt"/>: 0
    /// when the upstream set its top bit (RFC 2181 §8: such a value is treated as 0), for an SOA
    /// of the authority section (<paramref name="negativeSoa"/>) no more than its MINIMUM field
    /// (RFC 2308 §5: the negative answer's lifetime is the smaller of the two), and never more
    /// than <paramref name="bound"/>.
    /// </summary>
    private static uint Ttl(ReadOnlySpan<byte> reply, int fixedAt, int rdata, int end, bool negativeSoa, uint bound)
    {
        var ttl = BinaryPrimitives.ReadUInt32BigEndian(reply[(fixedAt + 4)..]);
        if (ttl > int.MaxValue) ttl = 0;
        // MNAME and RNAME take at least a byte each, then five 32-bit fields, MINIMUM last.
        if (negativeSoa && end - rdata >= 22) ttl = Math.Min(ttl, BinaryPrimitives.ReadUInt32BigEndian(reply[(end - 4)..]));
        return Math.Min(ttl, bound);
    }

    /// <summary>
    /// Which of the <paramref name="answers"/> answer records belong to the question's chain
    /// (RFC 1034 §4.3.2): owned by the name asked, then by each CNAME's target in turn, names
    /// compared as <see cref="DnsName.Read"/> gives them (lower-case). Anything else an upstream
    /// put in the answer section is not about the question; it is relayed as the upstream wrote
    /// it to a client that asked this name, but never copied into one of our authoritative
    /// answers. With each answer record's owner and, for an alias, its target. Null when a
    /// record is malformed.
    /// </summary>
    private static (bool[] InChain, string[] Owners, string?[] Targets)? Chain(ReadOnlySpan<byte> reply, int questionEnd, int answers)
    {
        Span<char> text = stackalloc char[DnsName.MaxWireLength];
        var owners = new string[answers];
        var targets = new string?[answers];
        var offset = questionEnd;
        for (var i = 0; i < answers; i++)
        {
            var fixedAt = DnsName.Read(reply, offset, text, out var length);
            if (fixedAt < 0 || fixedAt + 10 > reply.Length) return null;
            owners[i] = new string(text[..length]);
            var rdata = fixedAt + 10;
            if (BinaryPrimitives.ReadUInt16BigEndian(reply[fixedAt..]) == (ushort)DnsType.CNAME)
            {
                if (DnsName.Read(reply, rdata, text, out length) < 0) return null;
                targets[i] = new string(text[..length]);
            }
            offset = rdata + BinaryPrimitives.ReadUInt16BigEndian(reply[(fixedAt + 8)..]);
        }
        var inChain = new bool[answers];
        if (DnsName.Read(reply, HeaderLength, text, out var questionLength) < 0) return null;
        var name = new string(text[..questionLength]);
        // Each hop marks at least one record, so a loop of aliases ends.
        for (var hop = 0; hop <= answers && name is not null; hop++)
        {
            string? next = null;
            for (var i = 0; i < answers; i++)
            {
                if (inChain[i] || owners[i] != name) continue;
                inChain[i] = true;
                next ??= targets[i];
            }
            name = next;
        }
        return (inChain, owners, targets);
    }

    /// <summary>
    /// Appends one answer record with its owner and the names in its data written in full. Types
    /// whose data may hold compressed names (RFC 3597 §4: those of RFC 1035, and SRV, which some
    /// servers compress) are rewritten; any other data is copied as it is.
    /// </summary>
    private static bool ExpandRecord(ReadOnlySpan<byte> reply, int start, int fixedAt, int rdata, int end, ArrayBufferWriter<byte> expanded, List<int> ttls,
        out int dataAt)
    {
        dataAt = -1;
        var type = (DnsType)BinaryPrimitives.ReadUInt16BigEndian(reply[fixedAt..]);
        var (prefix, names, suffix) = type switch
        {
            DnsType.CNAME or DnsType.NS or DnsType.PTR => (0, 1, 0),
            (DnsType)15 => (2, 1, 0), // MX: preference, exchange
            DnsType.SRV => (6, 1, 0),
            DnsType.SOA => (0, 2, 20),
            _ => (end - rdata, 0, 0),
        };
        // Owner, fixed fields, and data no longer than its names in full.
        var room = DnsName.MaxWireLength + 10 + prefix + names * DnsName.MaxWireLength + suffix;
        if (expanded.WrittenCount + room > 65535 || rdata + prefix > end) return false;
        var destination = expanded.GetSpan(room);
        if (DnsName.Expand(reply, start, destination, out var at) != fixedAt) return false;
        reply.Slice(fixedAt, 8).CopyTo(destination[at..]);
        var ttlAt = at + 4;
        var rdLengthAt = at + 8;
        at += 10;
        var dataStart = at;
        reply.Slice(rdata, prefix).CopyTo(destination[at..]);
        at += prefix;
        var position = rdata + prefix;
        for (var n = 0; n < names; n++)
        {
            position = DnsName.Expand(reply, position, destination[at..], out var written);
            if (position < 0 || position > end) return false;
            at += written;
        }
        if (position + suffix != end) return false;
        reply.Slice(position, suffix).CopyTo(destination[at..]);
        at += suffix;
        BinaryPrimitives.WriteUInt16BigEndian(destination[rdLengthAt..], (ushort)(at - dataStart));
        ttls.Add(expanded.WrittenCount + ttlAt);
        dataAt = expanded.WrittenCount + dataStart;
        expanded.Advance(at);
        return true;
    }

    /// <summary>
    /// Writes the whole response for a client that asked <paramref name="query"/>: its id, opcode,
    /// RD and CD, RA set, AA clear; the upstream's rcode and TC; the client's question exactly
    /// (<paramref name="question"/>, letter case kept); the records with their TTLs counted down;
    /// and an OPT record only when the client sent one (<paramref name="payload"/>, the client's
    /// DO, the upstream's extended rcode). When it does not fit <paramref name="limit"/>: TC and
    /// no records, so the client asks again over TCP. Returns the length, or 0 when the question
    /// is not the one this reply answers.
    /// </summary>
    public int Write(Span<byte> response, in DnsQuery query, ReadOnlySpan<byte> question, int limit, int payload, DateTimeOffset now)
    {
        if (question.Length != _questionLength) return 0;
        var optLength = query.HasOpt ? OptRecord.Length : 0;
        var records = _message.Length - _questionLength;
        var truncated = Truncated;
        var end = HeaderLength + _questionLength;
        if (end + records + optLength > Math.Min(limit, response.Length))
        {
            truncated = true;
            records = 0;
        }
        question.CopyTo(response[HeaderLength..]);
        if (records > 0)
        {
            _message.AsSpan(_questionLength).CopyTo(response[end..]);
            CountDown(response[HeaderLength..], _ttls, now);
            end += records;
        }
        BinaryPrimitives.WriteUInt16BigEndian(response, query.Id);
        var flags = 0x8000 | (query.Opcode << 11) | (truncated ? 0x0200 : 0) | (query.RecursionDesired ? 0x0100 : 0) | 0x0080
            | (AuthenticData && query.DnssecOk ? 0x0020 : 0) | (query.CheckingDisabled ? 0x0010 : 0) | ((int)Rcode & 0xF);
        BinaryPrimitives.WriteUInt16BigEndian(response[2..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(response[4..], 1);
        BinaryPrimitives.WriteUInt16BigEndian(response[6..], (ushort)(records > 0 ? Answers : 0));
        BinaryPrimitives.WriteUInt16BigEndian(response[8..], (ushort)(records > 0 ? Authority : 0));
        BinaryPrimitives.WriteUInt16BigEndian(response[10..], (ushort)((records > 0 ? Additional : 0) + (query.HasOpt ? 1 : 0)));
        if (query.HasOpt)
        {
            OptRecord.Write(response[end..], payload, ExtendedRcode, query.DnssecOk);
            end += OptRecord.Length;
        }
        return end;
    }

    /// <summary>
    /// Appends the first <paramref name="records"/> answer records of the question's chain (see
    /// <see cref="Chain"/>), and with <paramref name="whole"/> all of them and the authority
    /// section's SOA records after them, names written in full and TTLs counted down, at
    /// <paramref name="body"/>; false (nothing written) when they do not fit.
    /// <paramref name="authority"/> is the number of SOA records; the caller writes nothing
    /// between the two sections.
    /// </summary>
    public bool AppendAnswers(Span<byte> response, ref int body, ref int answers, out int authority, DateTimeOffset now, int records, bool whole)
    {
        authority = 0;
        if (_expanded is null) return false;
        var length = whole ? _expanded.Length : records == 0 ? 0 : _chain[records - 1].End;
        if (body + length > response.Length) return false;
        var copy = response.Slice(body, length);
        _expanded.AsSpan(0, length).CopyTo(copy);
        CountDown(copy, _expandedTtls, now);
        body += length;
        answers += whole ? _expandedAnswers : records;
        authority = whole ? _expandedAuthority : 0;
        return true;
    }

    /// <summary>Lowers each TTL at <paramref name="offsets"/> by the whole seconds since the reply came (not below 0).</summary>
    private void CountDown(Span<byte> records, int[] offsets, DateTimeOffset now)
    {
        var elapsed = (long)Math.Max(0, (now - Received).TotalSeconds);
        if (elapsed == 0) return;
        foreach (var at in offsets)
        {
            if (at >= records.Length) break; // offsets ascend; the rest were not copied
            var ttl = BinaryPrimitives.ReadUInt32BigEndian(records[at..]);
            BinaryPrimitives.WriteUInt32BigEndian(records[at..], (uint)Math.Max(0, ttl - elapsed));
        }
    }
}
