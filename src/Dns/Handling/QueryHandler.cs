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
/// <item>EDNS version above 0: BADVERS; class other than IN/ANY, zone transfers: REFUSED;</item>
/// <item>names in none of our zones (reverse names included: only the service ranges' and the
/// networks' reverse zones are ours): forwarded when upstreams are configured and the client is
/// one of <see cref="ForwardingClients"/>, else REFUSED (no recursion is offered);</item>
/// <item>before the first sync with the control plane: SERVFAIL (every reverse name included);</item>
/// <item>otherwise an authoritative answer: the records (an alias chased while its target is
/// ours), or NOERROR/NODATA or NXDOMAIN with the zone's SOA in the authority section.</item>
/// </list>
/// UDP responses that do not fit 512 bytes (or the client's EDNS size, capped by
/// <see cref="MaxUdpPayload"/>) are sent without records and with TC set; over TCP an answer
/// beyond the 64 KiB message keeps the whole records that fit, with TC. UDP responses then
/// pass the <see cref="RateLimiter"/> when one is set: sent, sent truncated, or dropped.
/// </summary>
public sealed class QueryHandler(ZoneSnapshot initial)
{
    private const int OptLength = 11;

    /// <summary>Owner pointer, type, class, TTL and RDLENGTH of a record whose owner is compressed.</summary>
    private const int RecordHeaderLength = 12;

    /// <summary>Most aliases one answer follows (a longer chain ends there, unchased).</summary>
    public const int MaxChain = 8;

    [System.Runtime.CompilerServices.InlineArray(MaxChain)]
    private struct Aliases
    {
        private RecordSet? _first;
    }

    /// <summary>Returned by <see cref="Handle"/> when the query must go to the forwarder.</summary>
    public const int Forward = -1;
    private ZoneSnapshot _snapshot = initial;

    public DnsMetrics Metrics { get; } = new();

    /// <summary>Answers names outside our zones when upstreams are configured; null: they are REFUSED.</summary>
    public Forwarding.Forwarder? Forwarder { get; init; }

    /// <summary>Clients whose names outside our zones are forwarded; null: every client (in-process callers).</summary>
    public Forwarding.ForwardingClients? ForwardingClients { get; init; }

    /// <summary>Response rate limiting of UDP answers; null: off.</summary>
    public ResponseRateLimiter? RateLimiter { get; init; }

    /// <summary>Largest UDP payload this server sends, whatever the client offers.</summary>
    public int MaxUdpPayload { get; init; } = 1232;

    /// <summary>A span per query ("Dns:TraceQueries", off by default; exported only with OTLP configured).</summary>
    public bool TraceQueries { get; init; }

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
    public int Handle(ReadOnlySpan<byte> query, Span<byte> response, bool tcp) => Handle(query, response, tcp, default);

    /// <summary>
    /// <see cref="Handle(ReadOnlySpan{byte}, Span{byte}, bool)"/> for the client at
    /// <paramref name="client"/> (its raw socket address; empty when unknown: no rate limit, no
    /// forwarding gate).
    /// </summary>
    public int Handle(ReadOnlySpan<byte> query, Span<byte> response, bool tcp, ReadOnlySpan<byte> client)
    {
        using var trace = QueryTrace.Start(TraceQueries, tcp, response);
        Span<char> name = stackalloc char[DnsName.MaxWireLength];
        var known = ClientAddress.TryRead(client, out var address);
        var length = Answer(query, response, tcp, known, address, name, out var q);
        if (length <= 0 || tcp || !known || RateLimiter is not { } limiter) return length;
        var rcode = response[3] & 0xF;
        var questions = BinaryPrimitives.ReadUInt16BigEndian(response[4..]);
        var identity = ResponseRateLimiter.Identity(questions == 1 ? name[..q.NameLength] : default, q.Type, rcode);
        switch (limiter.Check(address, identity))
        {
            case RateLimitDecision.Send:
                return length;
            case RateLimitDecision.Slip:
                // TC and the question only: a real client asks again over TCP, a spoofed victim gets no amplification.
                Metrics.Slipped();
                response[2] |= 0x02;
                response[6] = response[7] = response[8] = response[9] = response[10] = response[11] = 0;
                return questions == 1 ? q.QuestionEnd : QueryParser.HeaderLength;
            default:
                // Counted as Answer counted it: no question (FORMERR, NOTIMP) as type 0, and a
                // BADVERS (the query's EDNS version is not 0) with its extended rcode.
                Metrics.RateLimited(questions == 1 ? q.Type : (ushort)0, q.HasOpt && q.EdnsVersion != 0 && questions == 1 ? 16 : rcode);
                return 0;
        }
    }

    private int Answer(ReadOnlySpan<byte> query, Span<byte> response, bool tcp, bool known, ClientAddress client, Span<char> name, out DnsQuery q)
    {
        var outcome = QueryParser.Parse(query, name, out q);
        switch (outcome)
        {
            case ParseOutcome.Drop:
                Metrics.Dropped();
                return 0;
            case ParseOutcome.FormErr:
            case ParseOutcome.NotImp:
                // The question (when there is exactly one) and an OPT record go back with the error.
                query[QueryParser.HeaderLength..q.QuestionEnd].CopyTo(response[QueryParser.HeaderLength..]);
                var rcode = outcome == ParseOutcome.FormErr ? Rcode.FormErr : Rcode.NotImp;
                return Complete(response, q, rcode, false, 0, 0, 0, 0, response.Length, truncated: false);
        }

        // The question goes back exactly as asked (same letter case): copied, never re-encoded.
        query[QueryParser.HeaderLength..q.QuestionEnd].CopyTo(response[QueryParser.HeaderLength..]);
        q.OverTcp = tcp;
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
        var result = snapshot.Lookup(name[..q.NameLength], (DnsType)q.Type, out var found);
        if (result == LookupResult.NotAuthoritative)
        {
            if (Forwarder is { } forwarder)
            {
                if (known && ForwardingClients is { } allowed && !allowed.Allows(client))
                {
                    Metrics.ForwardingRefused();
                    return Finish(response, q, Rcode.Refused, false, 0, 0, default, 0, limit);
                }
                var cached = forwarder.TryAnswerFromCache(name[..q.NameLength], q, response);
                if (cached > 0 && (tcp || cached <= limit))
                {
                    Metrics.CacheLookup(hit: true);
                    Metrics.Count(q.Type, response[3] & 0xF);
                    return cached;
                }
                Metrics.CacheLookup(hit: false);
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
            LookupResult.Success when found.All is not null => FinishAll(response, q, found.All, limit),
            LookupResult.Success => FinishAnswer(response, q, snapshot, found, limit),
            LookupResult.NoData => FinishAuthoritative(response, q, Rcode.NoError, 0, q.QuestionEnd, found.Zone, QueryParser.HeaderLength + found.ApexOffset, limit),
            _ => FinishAuthoritative(response, q, Rcode.NXDomain, 0, q.QuestionEnd, found.Zone, QueryParser.HeaderLength + found.ApexOffset, limit),
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
        Metrics.Forwarded(answered: length > 0);
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

    /// <summary>
    /// A positive answer: the records found, owned by the question. When they are an alias and the
    /// type asked is not CNAME, the alias is chased while its target lies in our zones (RFC 1034
    /// §4.3.2): each target's records follow, owned by a pointer to the target's name inside the
    /// previous CNAME's data, so the pre-encoded sets are copied and only their owners rewritten.
    /// A chain ends outside our zones (NOERROR, the resolver carries on), at a name that does not
    /// exist (NXDOMAIN, RFC 6604) or has no such records (NODATA), both with the target zone's SOA;
    /// a loop ends before the first repeated alias, and no chain is followed past
    /// <see cref="MaxChain"/> aliases.
    /// </summary>
    private int FinishAnswer(Span<byte> response, in DnsQuery q, ZoneSnapshot snapshot, in LookupAnswer found, int limit)
    {
        var body = q.QuestionEnd;
        var answers = 0;
        if (!Append(response, ref body, ref answers, found, QueryParser.HeaderLength, q.OverTcp)) return Overflow(response, q, answers, body, limit);
        if (found.Set is not { Type: DnsType.CNAME } alias || q.Type == (ushort)DnsType.CNAME)
        {
            return found.Set is { AdditionalCount: > 0 } srv && body + srv.Additional.Length <= response.Length
                ? WithAdditional(response, q, answers, body, srv, limit)
                : FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit);
        }
        var aliases = new Aliases();
        aliases[0] = alias;
        var owner = body - alias.Encoded.Length + RecordHeaderLength; // the alias's data: its target in full
        var target = alias.Target;
        for (var hop = 1; hop < MaxChain && target is not null && owner < 0x4000; hop++)
        {
            var result = snapshot.Lookup(target, (DnsType)q.Type, out var next);
            switch (result)
            {
                case LookupResult.NotAuthoritative:
                    return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit);
                case LookupResult.NoData:
                case LookupResult.NameError:
                    return FinishAuthoritative(response, q, result == LookupResult.NameError ? Rcode.NXDomain : Rcode.NoError,
                        answers, body, next.Zone, owner + next.ApexOffset, limit);
            }
            if (next.Set is { Type: DnsType.CNAME } again)
            {
                for (var i = 0; i < hop; i++)
                {
                    if (ReferenceEquals(aliases[i], again)) return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit);
                }
                aliases[hop] = again;
                if (!Append(response, ref body, ref answers, next, owner, q.OverTcp)) return Overflow(response, q, answers, body, limit);
                owner = body - again.Encoded.Length + RecordHeaderLength;
                target = again.Target;
                continue;
            }
            if (!Append(response, ref body, ref answers, next, owner, q.OverTcp)) return Overflow(response, q, answers, body, limit);
            break;
        }
        return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit);
    }

    /// <summary>
    /// Copies the records found to <paramref name="body"/>, owned by the name at offset
    /// <paramref name="owner"/>; false when they do not fit the buffer. With
    /// <paramref name="partial"/> the records that fit are copied all the same (then false).
    /// </summary>
    private static bool Append(Span<byte> response, ref int body, ref int answers, in LookupAnswer found, int owner, bool partial)
    {
        if (found.Set is { } set)
        {
            ReadOnlySpan<byte> encoded = set.Encoded;
            var count = set.Count;
            var fits = body + encoded.Length <= response.Length;
            if (!fits)
            {
                if (!partial) return false;
                (count, var kept) = WholeRecords(encoded, count, response.Length - body);
                encoded = encoded[..kept];
            }
            var records = response.Slice(body, encoded.Length);
            encoded.CopyTo(records);
            if (owner != QueryParser.HeaderLength)
            {
                for (var at = 0; at < records.Length; at += RecordHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(records[(at + 10)..]))
                {
                    BinaryPrimitives.WriteUInt16BigEndian(records[at..], (ushort)(0xC000 | owner));
                }
            }
            body += records.Length;
            answers += count;
            return fits;
        }
        // A synthesized pod record.
        var address = found.Address;
        var length = RecordHeaderLength + address.Length;
        if (body + length > response.Length) return false;
        var record = response.Slice(body, length);
        BinaryPrimitives.WriteUInt16BigEndian(record, (ushort)(0xC000 | owner));
        BinaryPrimitives.WriteUInt16BigEndian(record[2..], (ushort)address.Type);
        BinaryPrimitives.WriteUInt16BigEndian(record[4..], 1);
        BinaryPrimitives.WriteUInt32BigEndian(record[6..], found.AddressTtl);
        BinaryPrimitives.WriteUInt16BigEndian(record[10..], (ushort)address.Length);
        address.Write(record[RecordHeaderLength..]);
        body += length;
        answers++;
        return true;
    }

    /// <summary>An authoritative response: the answers before <paramref name="body"/>, then the zone's SOA if one is given.</summary>
    private int FinishAuthoritative(Span<byte> response, in DnsQuery q, Rcode rcode, int answers, int body, Zone? soaZone, int soaOwner, int limit)
    {
        var authority = 0;
        if (soaZone is not null)
        {
            if (body + 2 + soaZone.SoaTail.Length > response.Length) return Overflow(response, q, answers, body, limit);
            BinaryPrimitives.WriteUInt16BigEndian(response[body..], (ushort)(0xC000 | soaOwner));
            soaZone.SoaTail.CopyTo(response[(body + 2)..]);
            body += 2 + soaZone.SoaTail.Length;
            authority = 1;
        }
        return Complete(response, q, rcode, true, answers, authority, body - q.QuestionEnd, 0, limit, truncated: false);
    }

    /// <summary>SRV and NS answers with their targets' addresses in the additional section, when they fit (else without, and not truncated: RFC 2181 §9).</summary>
    private int WithAdditional(Span<byte> response, in DnsQuery q, int answers, int body, RecordSet srv, int limit)
    {
        srv.Additional.CopyTo(response[body..]);
        return Complete(response, q, Rcode.NoError, true, answers, 0, body - q.QuestionEnd, 0, limit, truncated: false, srv.AdditionalCount, srv.Additional.Length);
    }

    /// <summary>The answer does not fit the buffer: TC, and no records (over TCP, the <paramref name="answers"/> before <paramref name="body"/> that fit).</summary>
    private int Overflow(Span<byte> response, in DnsQuery q, int answers, int body, int limit) =>
        Complete(response, q, Rcode.NoError, true, answers, 0, body - q.QuestionEnd, 0, limit, truncated: true);

    /// <summary>
    /// How many of the first <paramref name="count"/> records of <paramref name="records"/> fit
    /// in <paramref name="room"/> bytes, and their length. Every record here is owned by a
    /// 2-byte pointer, so each is <see cref="RecordHeaderLength"/> bytes and its data.
    /// </summary>
    private static (int Count, int Length) WholeRecords(ReadOnlySpan<byte> records, int count, int room)
    {
        var (n, at) = (0, 0);
        while (n < count && at + RecordHeaderLength <= records.Length)
        {
            var next = at + RecordHeaderLength + BinaryPrimitives.ReadUInt16BigEndian(records[(at + 10)..]);
            if (next > room) break;
            (n, at) = (n + 1, next);
        }
        return (n, at);
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

    /// <summary>
    /// Header, question, OPT; applies the size limit (TC and no records when over; over TCP the
    /// whole records that fit stay, since a client has nowhere else to ask). Additional records
    /// written after the others are kept only when everything fits; without them the answer is
    /// still whole.
    /// </summary>
    private int Complete(Span<byte> response, in DnsQuery q, Rcode rcode, bool authoritative, int answers, int authority,
        int recordBytes, int extendedRcode, int limit, bool truncated, int additional = 0, int additionalBytes = 0)
    {
        var optLength = q.HasOpt ? OptLength : 0;
        if (truncated || q.QuestionEnd + recordBytes + additionalBytes + optLength > limit)
        {
            additional = additionalBytes = 0;
        }
        if (truncated || q.QuestionEnd + recordBytes + optLength > limit)
        {
            truncated = true;
            if (q.OverTcp)
            {
                var (kept, length) = WholeRecords(response[q.QuestionEnd..], answers + authority, limit - optLength - q.QuestionEnd);
                (answers, authority, recordBytes) = (Math.Min(kept, answers), Math.Max(0, kept - answers), length);
            }
            else
            {
                answers = authority = 0;
                recordBytes = 0;
            }
            Metrics.Truncated();
        }
        WriteHeader(response, q, rcode, authoritative, q.QuestionEnd > QueryParser.HeaderLength ? 1 : 0, answers, authority, additional + (q.HasOpt ? 1 : 0), truncated);
        var end = q.QuestionEnd + recordBytes + additionalBytes;
        if (q.HasOpt)
        {
            var opt = response.Slice(end, OptLength);
            opt[0] = 0;
            BinaryPrimitives.WriteUInt16BigEndian(opt[1..], (ushort)DnsType.OPT);
            BinaryPrimitives.WriteUInt16BigEndian(opt[3..], (ushort)MaxUdpPayload);
            opt[5] = (byte)extendedRcode;
            opt[6] = 0;
            // The DO bit is copied from the query (RFC 3225 §3); nothing here is signed.
            opt[7] = q.DnssecOk ? (byte)0x80 : (byte)0;
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
