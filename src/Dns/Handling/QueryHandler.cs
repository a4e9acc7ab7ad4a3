using System.Buffers.Binary;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Handling;

/// <summary>
/// Turns one query message into one response, allocation-free, against the current zone
/// snapshot. The rcode contract:
/// <list type="bullet">
/// <item>shorter than a header, or a response (QR set): no reply at all;</item>
/// <item>opcode other than QUERY: NOTIMP; not exactly one question, or a malformed message: FORMERR;</item>
/// <item>EDNS version above 0: BADVERS; class other than IN/ANY, zone transfers, names in none of
/// our zones: REFUSED (no recursion is offered);</item>
/// <item>before the first sync with the control plane: SERVFAIL;</item>
/// <item>otherwise an authoritative answer: the records, or NOERROR/NODATA or NXDOMAIN with the
/// zone's SOA in the authority section.</item>
/// </list>
/// UDP responses that do not fit 512 bytes (or the client's EDNS size, capped by
/// <see cref="MaxUdpPayload"/>) are sent without records and with TC set.
/// </summary>
public sealed class QueryHandler(ZoneSnapshot initial)
{
    private const int OptLength = 11;

    /// <summary>Returned by <see cref="Handle"/> when the query must go to the forwarder.</summary>
    public const int Forward = -1;
    private ZoneSnapshot _snapshot = initial;

    public DnsMetrics Metrics { get; } = new();

    /// <summary>Answers names outside our zones when upstreams are configured; null: they are REFUSED.</summary>
    public Forwarding.Forwarder? Forwarder { get; init; }

    /// <summary>Largest UDP payload this server sends, whatever the client offers.</summary>
    public int MaxUdpPayload { get; init; } = 1232;

    public ZoneSnapshot Snapshot => Volatile.Read(ref _snapshot);

    /// <summary>Raised after each swap (tests and diagnostics wait on it).</summary>
    public event Action<ZoneSnapshot>? Swapped;

    /// <summary>Atomically replaces the zone data.</summary>
    public void Swap(ZoneSnapshot snapshot)
    {
        Volatile.Write(ref _snapshot, snapshot);
        Swapped?.Invoke(snapshot);
    }

    /// <summary>
    /// Writes the response to <paramref name="query"/> into <paramref name="response"/> (at least
    /// 512 bytes; 65535 for TCP) and returns its length, or 0 when nothing must be sent.
    /// </summary>
    public int Handle(ReadOnlySpan<byte> query, Span<byte> response, bool tcp)
    {
        Span<char> name = stackalloc char[DnsName.MaxWireLength];
        var outcome = QueryParser.Parse(query, name, out var q);
        switch (outcome)
        {
            case ParseOutcome.Drop:
                Metrics.Dropped();
                return 0;
            case ParseOutcome.FormErr:
            case ParseOutcome.NotImp:
                var rcode = outcome == ParseOutcome.FormErr ? Rcode.FormErr : Rcode.NotImp;
                Metrics.Count(0, (int)rcode);
                return WriteHeader(response, q, rcode, authoritative: false, questions: 0, answers: 0, authority: 0, additional: 0);
        }

        // The question goes back exactly as asked (same letter case): copied, never re-encoded.
        query[QueryParser.HeaderLength..q.QuestionEnd].CopyTo(response[QueryParser.HeaderLength..]);
        var limit = tcp ? response.Length : Math.Min(response.Length, q.HasOpt ? Math.Clamp((int)q.UdpPayloadSize, 512, MaxUdpPayload) : 512);
        if (q.HasOpt && q.EdnsVersion != 0)
        {
            // BADVERS (16): upper bits in the OPT record, lower bits (0) in the header.
            return Finish(response, q, Rcode.NoError, false, 0, 0, default, extendedRcode: 1, limit);
        }
        if (q.Class is not (1 or 255) || q.Type is (ushort)DnsType.AXFR or (ushort)DnsType.IXFR)
        {
            return Finish(response, q, Rcode.Refused, false, 0, 0, default, 0, limit);
        }

        var snapshot = Snapshot;
        var result = snapshot.Lookup(name[..q.NameLength], (DnsType)q.Type, out var zone, out var apexOffset, out var answer, out var all);
        if (result == LookupResult.NotAuthoritative)
        {
            if (Forwarder is { } forwarder)
            {
                var cached = forwarder.TryAnswerFromCache(name[..q.NameLength], q, response);
                if (cached > 0 && (tcp || cached <= limit))
                {
                    Metrics.Count(q.Type, response[3] & 0xF);
                    return cached;
                }
                return Forward;
            }
            return Finish(response, q, Rcode.Refused, false, 0, 0, default, 0, limit);
        }
        if (!snapshot.Synced)
        {
            return Finish(response, q, Rcode.ServFail, false, 0, 0, default, 0, limit);
        }
        return result switch
        {
            LookupResult.Success when all is not null => FinishAll(response, q, all, limit),
            LookupResult.Success => Finish(response, q, Rcode.NoError, true, answer!.Count, 0, answer.Encoded, 0, limit),
            LookupResult.NoData => FinishNegative(response, q, Rcode.NoError, zone!, apexOffset, limit),
            _ => FinishNegative(response, q, Rcode.NXDomain, zone!, apexOffset, limit),
        };
    }

    /// <summary>SERVFAIL for a query no upstream answered (the question echoed).</summary>
    public int ServerFailure(ReadOnlySpan<byte> query, Span<byte> response)
    {
        Span<char> name = stackalloc char[DnsName.MaxWireLength];
        if (QueryParser.Parse(query, name, out var q) != ParseOutcome.Ok) return 0;
        query[QueryParser.HeaderLength..q.QuestionEnd].CopyTo(response[QueryParser.HeaderLength..]);
        return Complete(response, q, Rcode.ServFail, false, 0, 0, 0, 0, response.Length, truncated: false);
    }

    /// <summary>Forwards a query to the upstreams; the response (or SERVFAIL) goes into <paramref name="response"/>.</summary>
    public async Task<int> ForwardAsync(byte[] query, Memory<byte> response, CancellationToken cancellationToken)
    {
        var length = await Forwarder!.ForwardAsync(query, response, cancellationToken).ConfigureAwait(false);
        if (length > 0)
        {
            Metrics.Count(BinaryPrimitives.ReadUInt16BigEndian(query.AsSpan(DnsName.Skip(query, QueryParser.HeaderLength))), response.Span[3] & 0xF);
            return length;
        }
        return ServerFailure(query, response.Span);
    }

    private int FinishAll(Span<byte> response, in DnsQuery q, RecordSet[] sets, int limit)
    {
        // ANY: every set of the name, one after another.
        var count = 0;
        var body = q.QuestionEnd;
        var fits = true;
        foreach (var set in sets)
        {
            if (body + set.Encoded.Length > response.Length) { fits = false; break; }
            set.Encoded.CopyTo(response[body..]);
            body += set.Encoded.Length;
            count += set.Count;
        }
        var length = body - q.QuestionEnd;
        if (!fits) count = length = 0;
        return Complete(response, q, Rcode.NoError, true, count, 0, length, 0, limit, truncated: !fits);
    }

    private int FinishNegative(Span<byte> response, in DnsQuery q, Rcode rcode, Zone zone, int apexOffset, int limit)
    {
        var body = q.QuestionEnd;
        if (body + 2 + zone.SoaTail.Length > response.Length)
        {
            return Complete(response, q, rcode, true, 0, 0, 0, 0, limit, truncated: true);
        }
        BinaryPrimitives.WriteUInt16BigEndian(response[body..], (ushort)(0xC000 | (QueryParser.HeaderLength + apexOffset)));
        zone.SoaTail.CopyTo(response[(body + 2)..]);
        return Complete(response, q, rcode, true, 0, 1, 2 + zone.SoaTail.Length, 0, limit, truncated: false);
    }

    private int Finish(Span<byte> response, in DnsQuery q, Rcode rcode, bool authoritative, int answers, int authority,
        ReadOnlySpan<byte> records, int extendedRcode, int limit)
    {
        var body = q.QuestionEnd;
        var truncated = body + records.Length > response.Length;
        if (!truncated)
        {
            records.CopyTo(response[body..]);
        }
        return Complete(response, q, rcode, authoritative, truncated ? 0 : answers, authority, truncated ? 0 : records.Length, extendedRcode, limit, truncated);
    }

    /// <summary>Header, question, OPT; applies the size limit (TC and no records when over).</summary>
    private int Complete(Span<byte> response, in DnsQuery q, Rcode rcode, bool authoritative, int answers, int authority,
        int recordBytes, int extendedRcode, int limit, bool truncated)
    {
        var optLength = q.HasOpt ? OptLength : 0;
        if (truncated || q.QuestionEnd + recordBytes + optLength > limit)
        {
            truncated = true;
            answers = authority = 0;
            recordBytes = 0;
            Metrics.Truncated();
        }
        WriteHeader(response, q, rcode, authoritative, 1, answers, authority, q.HasOpt ? 1 : 0, truncated);
        var end = q.QuestionEnd + recordBytes;
        if (q.HasOpt)
        {
            var opt = response.Slice(end, OptLength);
            opt[0] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(opt[1..], (ushort)DnsType.OPT);
            BinaryPrimitives.WriteUInt16BigEndian(opt[3..], (ushort)MaxUdpPayload);
            opt[5] = (byte)extendedRcode;
            opt[6] = 0;
            opt[7] = 0;
            opt[8] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(opt[9..], 0);
            end += OptLength;
        }
        Metrics.Count(q.Type, extendedRcode << 4 | (int)rcode);
        return end;
    }

    private static int WriteHeader(Span<byte> response, in DnsQuery q, Rcode rcode, bool authoritative, int questions, int answers, int authority, int additional, bool truncated = false)
    {
        BinaryPrimitives.WriteUInt16BigEndian(response, q.Id);
        var flags = 0x8000 | (q.Opcode << 11) | (authoritative ? 0x0400 : 0) | (truncated ? 0x0200 : 0)
            | (q.RecursionDesired ? 0x0100 : 0) | (q.CheckingDisabled ? 0x0010 : 0) | ((int)rcode & 0xF);
        BinaryPrimitives.WriteUInt16BigEndian(response[2..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(response[4..], (ushort)questions);
        BinaryPrimitives.WriteUInt16BigEndian(response[6..], (ushort)answers);
        BinaryPrimitives.WriteUInt16BigEndian(response[8..], (ushort)authority);
        BinaryPrimitives.WriteUInt16BigEndian(response[10..], (ushort)additional);
        return QueryParser.HeaderLength;
    }
}
