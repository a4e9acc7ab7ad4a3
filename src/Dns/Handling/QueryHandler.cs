using System.Buffers.Binary;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Handling;

/// <summary>
/// Turns one query message into one response, allocation-free, against the current zone
/// snapshot (answers the upstreams must give first: <see cref="Forward"/>, then
/// <see cref="ResolveAsync"/>). The rcode contract:
/// <list type="bullet">
/// <item>shorter than a header, or a response (QR set): no reply at all;</item>
/// <item>a well-formed signed query (TSIG): NOTAUTH with an unsigned TSIG record, error BADKEY (no keys are held);</item>
/// <item>opcode other than QUERY: NOTIMP; not exactly one question, or a malformed message: FORMERR;</item>
/// <item>EDNS version above 0: BADVERS; class other than IN/ANY, zone transfers: REFUSED;</item>
/// <item>names in none of our zones (reverse names included: only the service ranges' and the
/// networks' reverse zones are ours): forwarded when upstreams are configured and the client is
/// one of <see cref="ForwardingClients"/>, else REFUSED (no recursion is offered); the upstream's
/// rcode, RA set, AA clear; SERVFAIL when no upstream answers; without RD only from the cache,
/// else REFUSED;</item>
/// <item>before the first sync with the control plane: SERVFAIL (every reverse name included);</item>
/// <item>otherwise an authoritative answer: the records (an alias chased while its target is
/// ours, and its last target outside our zones resolved through the forwarders when the client
/// may use them and set RD), or NOERROR/NODATA or NXDOMAIN with the zone's SOA in the authority
/// section.</item>
/// </list>
/// UDP responses that do not fit 512 bytes (or the client's EDNS size, capped by
/// <see cref="MaxUdpPayload"/>) are sent without records and with TC set; over TCP an answer
/// beyond the 64 KiB message keeps the whole records that fit, with TC. UDP responses then
/// pass the <see cref="RateLimiter"/> when one is set: sent, sent truncated, or dropped.
/// </summary>
public sealed class QueryHandler(ZoneSnapshot initial)
{
    private const int OptLength = OptRecord.Length;

    /// <summary>Owner pointer, type, class, TTL and RDLENGTH of a record whose owner is compressed.</summary>
    private const int RecordHeaderLength = 12;

    /// <summary>Most aliases one answer follows (a longer chain ends there, unchased).</summary>
    public const int MaxChain = 8;

    [System.Runtime.CompilerServices.InlineArray(MaxChain)]
    private struct Aliases
    {
        private RecordSet? _first;
    }

    /// <summary>
    /// Returned by <see cref="Handle"/> when the answer needs the upstreams: the transport then
    /// awaits <see cref="ResolveAsync"/> off its receive loop, for UDP and TCP alike.
    /// </summary>
    public const int Forward = -1;

    /// <summary>Which run of a query this is: the transport's synchronous one, or one of <see cref="ResolveAsync"/>'s.</summary>
    private enum Pass : byte
    {
        /// <summary>From <see cref="Handle"/>: the cache or <see cref="Forward"/>.</summary>
        Query,

        /// <summary>Again, to learn what to ask the upstreams (<see cref="Upstream.Target"/>).</summary>
        Probe,

        /// <summary>Once more with the upstreams' reply (<see cref="Upstream.Fetched"/>) in place of the cache's.</summary>
        Fetched,

        /// <summary>An upstream's chain came back into our zones: our data from there on, and no more forwarding.</summary>
        Inside,
    }

    /// <summary>What a query needs from the forwarder, carried between the runs of one query.</summary>
    private struct Upstream
    {
        public Pass Pass;

        /// <summary>Set with <see cref="Forward"/>: the alias target to resolve; null: the name asked.</summary>
        public string? Target;

        /// <summary>On <see cref="Pass.Fetched"/>: the upstreams' reply, or null when none answered.</summary>
        public Forwarding.ForwardedAnswer? Fetched;
    }
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
        var upstream = new Upstream { Pass = Pass.Query };
        var length = Answer(query, response, tcp, known, address, name, out var q, ref upstream);
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

    private int Answer(ReadOnlySpan<byte> query, Span<byte> response, bool tcp, bool known, ClientAddress client, Span<char> name, out DnsQuery q,
        ref Upstream upstream)
    {
        var outcome = QueryParser.Parse(query, name, out q);
        if (q.TsigOwner > 0 && outcome is ParseOutcome.Ok or ParseOutcome.NotImp)
        {
            return Unverifiable(query, response, q, tcp);
        }
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
        var limit = Limit(q, tcp, response.Length);
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
        // Recursion for this client: names outside our zones, and aliases that lead there.
        var mayForward = Forwarder is not null && !(known && ForwardingClients is { } allowed && !allowed.Allows(client));
        if (result == LookupResult.NotAuthoritative)
        {
            if (Forwarder is not null && !mayForward) Metrics.ForwardingRefused();
            return mayForward
                ? Forwarded(response, query[QueryParser.HeaderLength..q.QuestionEnd], q, snapshot, name[..q.NameLength], limit, ref upstream)
                : Finish(response, q, Rcode.Refused, false, 0, 0, default, 0, limit);
        }
        if (!snapshot.Synced)
        {
            return Finish(response, q, Rcode.ServFail, false, 0, 0, default, 0, limit);
        }
        return result switch
        {
            LookupResult.Success when found.All is not null => FinishAll(response, q, found.All, limit),
            LookupResult.Success => FinishAnswer(response, q, snapshot, found, limit, mayForward, ref upstream),
            LookupResult.NoData => FinishAuthoritative(response, q, Rcode.NoError, 0, q.QuestionEnd, found.Zone, QueryParser.HeaderLength + found.ApexOffset, limit),
            _ => FinishAuthoritative(response, q, Rcode.NXDomain, 0, q.QuestionEnd, found.Zone, QueryParser.HeaderLength + found.ApexOffset, limit),
        };
    }

    /// <summary>
    /// The rest of a query <see cref="Handle"/> returned <see cref="Forward"/> for: runs it again
    /// to learn what the upstreams must resolve (the name asked, or the last target of an alias
    /// chain), asks them, and answers with their reply in place of the cache's (SERVFAIL when
    /// none answered a forwarded name; the aliases alone when none answered for a target).
    /// </summary>
    public async Task<int> ResolveAsync(ReadOnlyMemory<byte> query, Memory<byte> response, bool tcp, CancellationToken cancellationToken)
    {
        var (length, question) = Pending(query.Span, response.Span, tcp);
        if (length != Forward) return length; // answered meanwhile, from an answer another query brought
        var fetched = await Forwarder!.ResolveAsync(question.Name, question.Type, question.Class, question.DnssecOk, question.CheckingDisabled, cancellationToken)
            .ConfigureAwait(false);
        Metrics.Forwarded(answered: fetched is not null);
        var upstream = new Upstream { Pass = Pass.Fetched, Fetched = fetched };
        Span<char> name = stackalloc char[DnsName.MaxWireLength];
        return Answer(query.Span, response.Span, tcp, false, default, name, out _, ref upstream);
    }

    private readonly record struct UpstreamQuestion(string Name, ushort Type, ushort Class, bool DnssecOk, bool CheckingDisabled);

    private (int Length, UpstreamQuestion Question) Pending(ReadOnlySpan<byte> query, Span<byte> response, bool tcp)
    {
        Span<char> name = stackalloc char[DnsName.MaxWireLength];
        var upstream = new Upstream { Pass = Pass.Probe };
        var length = Answer(query, response, tcp, false, default, name, out var q, ref upstream);
        if (length != Forward) return (length, default);
        return (length, new UpstreamQuestion(upstream.Target ?? new string(name[..q.NameLength]), q.Type, q.Class, q.DnssecOk, q.CheckingDisabled));
    }

    /// <summary>
    /// The forwarder's answer for <paramref name="name"/> with the query's type, class, DO and
    /// CD: on the last run what the upstreams replied, else the cache's (allocation-free).
    /// </summary>
    private Forwarding.ForwardedAnswer? FromForwarder(Forwarding.Forwarder forwarder, ReadOnlySpan<char> name, in DnsQuery q, in Upstream upstream)
    {
        Span<char> key = stackalloc char[Forwarding.Forwarder.MaxKeyLength];
        key = key[..Forwarding.Forwarder.Key(name, q.Type, q.Class, q.DnssecOk, q.CheckingDisabled, key)];
        if (upstream.Pass == Pass.Fetched)
        {
            // The zones may have changed since it was asked for: only a reply to this very question counts.
            return upstream.Fetched is { } fetched && key.SequenceEqual(fetched.Key) ? fetched : null;
        }
        var cached = forwarder.Cached(key);
        if (upstream.Pass == Pass.Query) Metrics.CacheLookup(hit: cached is not null);
        return cached;
    }

    /// <summary>
    /// A name outside our zones, for a client that may use the forwarders: the upstreams' answer
    /// shaped for this client (see <see cref="Forwarding.ForwardedAnswer.Write"/>), from the cache
    /// or, after <see cref="Forward"/>, from the upstreams. Without RD only the cache answers
    /// (RFC 1034 §4.3.1): a miss is REFUSED. A reply that holds records about names in our
    /// zones is not relayed: its chain, up to where it comes back into our zones, is followed by
    /// our own data (see <see cref="AppendUpstream"/>), AA clear.
    /// </summary>
    private int Forwarded(Span<byte> response, ReadOnlySpan<byte> question, in DnsQuery q, ZoneSnapshot snapshot, ReadOnlySpan<char> name, int limit,
        ref Upstream upstream)
    {
        var forwarder = Forwarder!;
        var answer = FromForwarder(forwarder, name, q, upstream);
        if (answer is null)
        {
            if (upstream.Pass == Pass.Fetched) return Finish(response, q, Rcode.ServFail, false, 0, 0, default, 0, limit, recursion: true);
            if (!q.RecursionDesired) return Finish(response, q, Rcode.Refused, false, 0, 0, default, 0, limit);
            upstream.Target = null;
            return Forward;
        }
        var reentry = Reentry(snapshot, answer);
        if (reentry.Cut < answer.ChainLength || reentry.Back is not null || OwnsAnyOf(snapshot, answer.OtherOwners))
        {
            return answer.Appendable && answer.Rcode is Rcode.NoError or Rcode.NXDomain && answer.ExtendedRcode == 0
                ? AppendUpstream(response, q, snapshot, answer, reentry, 0, q.QuestionEnd, limit, authoritative: false)
                : Finish(response, q, Rcode.ServFail, false, 0, 0, default, 0, limit, recursion: true);
        }
        var length = answer.Write(response, q, question, limit, MaxUdpPayload, forwarder.Now);
        if (length == 0) return Finish(response, q, Rcode.ServFail, false, 0, 0, default, 0, limit, recursion: true);
        if ((response[2] & 0x02) != 0 && !answer.Truncated) Metrics.Truncated();
        Metrics.Count(q.Type, answer.ExtendedRcode << 4 | (int)answer.Rcode);
        return length;
    }

    /// <summary>
    /// An alias chain that ends at <paramref name="target"/>, outside our zones. With forwarders
    /// for this client and RD set, the target is resolved as CoreDNS does for ExternalName
    /// services (a stub resolver would not chase it itself): the upstream's answer records follow
    /// the aliases, with its NOERROR or NXDOMAIN, AA and RA set, and its SOA in the authority
    /// section when the target has no such records (RFC 2308 §3: how long to cache that). Otherwise, or when the upstreams
    /// give nothing usable, the aliases alone (NOERROR, the resolver carries on).
    /// <para>
    /// Of the upstream's answer records only those of the chain are copied: owned by the target,
    /// then by each of the upstream's CNAME targets in turn (RFC 1034 §4.3.2). This answer is AA,
    /// which resolvers rank above any other data (RFC 2181 §5.4.1), so a record about some other
    /// name that an upstream slipped in would be believed on our authority; and where the chain
    /// comes back into our zones, our data answers from there on (<see cref="AppendUpstream"/>).
    /// A plain forwarded answer (<see cref="Forwarded"/>) is relayed whole when it says nothing
    /// about our names: it is AA-clear, answers the client's own question, and its reader ranks
    /// it as the non-authoritative data it is; cutting records out of it would also break the
    /// upstream's compression pointers into them, and the cache keeps whole messages per
    /// question, so an extra record answers no other question here.
    /// </para>
    /// </summary>
    private int ChaseOutside(Span<byte> response, in DnsQuery q, ZoneSnapshot snapshot, string target, int answers, int body, int limit, bool mayForward,
        ref Upstream upstream)
    {
        if (!mayForward || !q.RecursionDesired || Forwarder is not { } forwarder)
        {
            return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit);
        }
        var outside = FromForwarder(forwarder, target, q, upstream);
        if (outside is null && upstream.Pass != Pass.Fetched)
        {
            upstream.Target = target;
            return Forward;
        }
        if (outside is null || outside.Rcode is not (Rcode.NoError or Rcode.NXDomain) || outside.ExtendedRcode != 0 || !outside.Appendable)
        {
            return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit);
        }
        return AppendUpstream(response, q, snapshot, outside, Reentry(snapshot, outside), answers, body, limit, authoritative: true);
    }

    /// <summary>Whether one of <paramref name="names"/> lies in our zones.</summary>
    private static bool OwnsAnyOf(ZoneSnapshot snapshot, ReadOnlySpan<string> names)
    {
        foreach (var name in names)
        {
            if (snapshot.IsOurs(name)) return true;
        }
        return false;
    }

    /// <summary>
    /// Where an upstream's chain comes back into our zones: it is cut after the alias whose target
    /// is ours (<c>Back</c>, written in full at <c>At</c> among the chain's records), or before a
    /// record owned by a name of ours out of the chain's order (<c>Back</c> null). A chain that
    /// stays outside gives (its length, null, -1).
    /// </summary>
    private static (int Cut, string? Back, int At) Reentry(ZoneSnapshot snapshot, Forwarding.ForwardedAnswer answer)
    {
        for (var i = 0; i < answer.ChainLength; i++)
        {
            if (snapshot.IsOurs(answer.ChainOwner(i))) return (i, null, -1);
            if (answer.ChainTarget(i) is { } target && snapshot.IsOurs(target)) return (i + 1, target, answer.ChainTargetAt(i));
        }
        return (answer.ChainLength, null, -1);
    }

    /// <summary>
    /// Appends an upstream's answer chain after the <paramref name="answers"/> records before
    /// <paramref name="body"/> (RA set; its rcode, and its SOA when the chain ends outside our
    /// zones). The upstream has no say about our names (RFC 2181 §5.4.1): where its chain comes
    /// back into our zones it is cut, after the alias that points there, and our own records for
    /// that name follow, chased within our zones only (the upstreams are asked once per query), and
    /// the answer's rcode and SOA are ours. Everything else it said about our names is left out.
    /// </summary>
    private int AppendUpstream(Span<byte> response, in DnsQuery q, ZoneSnapshot snapshot, Forwarding.ForwardedAnswer outside,
        (int Cut, string? Back, int At) reentry, int answers, int body, int limit, bool authoritative)
    {
        var (cut, back, at) = reentry;
        var start = body;
        // Room kept for the OPT record, so that everything before it is whole records.
        var room = response[..(response.Length - (q.HasOpt ? OptLength : 0))];
        if (!outside.AppendAnswers(room, ref body, ref answers, out var authority, Forwarder!.Now, cut, whole: back is null && cut == outside.ChainLength)) return Overflow(response, q, answers, body, limit, !authoritative);
        if (cut == outside.ChainLength && back is null)
        {
            // Its SOA, when one is there, is about the upstream's end of the chain.
            return Complete(response, q, outside.Rcode, authoritative, answers, authority, body - q.QuestionEnd, 0, limit, truncated: false, recursion: true);
        }
        if (back is null || start + at >= 0x4000)
        {
            return Complete(response, q, Rcode.NoError, authoritative, answers, 0, body - q.QuestionEnd, 0, limit, truncated: false, recursion: true);
        }
        var inside = new Upstream { Pass = Pass.Inside };
        return ChaseAliases(response, q, snapshot, null, back, start + at, answers, body, limit, authoritative, false, ref inside);
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
    /// A chain ends outside our zones (see <see cref="ChaseOutside"/>), at a name that does not
    /// exist (NXDOMAIN, RFC 6604) or has no such records (NODATA), both with the target zone's SOA;
    /// a loop ends before the first repeated alias, and no chain is followed past
    /// <see cref="MaxChain"/> aliases.
    /// </summary>
    private int FinishAnswer(Span<byte> response, in DnsQuery q, ZoneSnapshot snapshot, in LookupAnswer found, int limit, bool mayForward, ref Upstream upstream)
    {
        var body = q.QuestionEnd;
        var answers = 0;
        if (!Append(response, ref body, ref answers, found, QueryParser.HeaderLength, q.OverTcp)) return Overflow(response, q, answers, body, limit);
        if (found.Set is not { Type: DnsType.CNAME } alias || q.Type == (ushort)DnsType.CNAME)
        {
            return found.Set is { AdditionalCount: > 0 } srv
                ? WithAdditional(response, q, answers, body, srv, limit)
                : FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit);
        }
        var owner = body - alias.Encoded.Length + RecordHeaderLength; // the alias's data: its target in full
        return ChaseAliases(response, q, snapshot, alias, alias.Target, owner, answers, body, limit, true, mayForward, ref upstream);
    }

    /// <summary>
    /// Follows an alias chain from <paramref name="target"/>, written in full at offset
    /// <paramref name="owner"/>, after the <paramref name="answers"/> records before
    /// <paramref name="body"/>; <paramref name="first"/> is the alias that led there, if ours.
    /// Out of our zones it goes on through the forwarders (<see cref="ChaseOutside"/>), unless it
    /// came back from them (<see cref="Pass.Inside"/>): then the aliases alone answer.
    /// </summary>
    private int ChaseAliases(Span<byte> response, in DnsQuery q, ZoneSnapshot snapshot, RecordSet? first, string? target, int owner, int answers, int body,
        int limit, bool authoritative, bool mayForward, ref Upstream upstream)
    {
        var recursion = upstream.Pass == Pass.Inside;
        var aliases = new Aliases();
        aliases[0] = first;
        for (var hop = 1; hop < MaxChain && target is not null && owner < 0x4000; hop++)
        {
            var result = snapshot.Lookup(target, (DnsType)q.Type, out var next);
            switch (result)
            {
                case LookupResult.NotAuthoritative when upstream.Pass == Pass.Inside:
                    return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit, authoritative, recursion);
                case LookupResult.NotAuthoritative:
                    return ChaseOutside(response, q, snapshot, target, answers, body, limit, mayForward, ref upstream);
                case LookupResult.NoData:
                case LookupResult.NameError:
                    return FinishAuthoritative(response, q, result == LookupResult.NameError ? Rcode.NXDomain : Rcode.NoError,
                        answers, body, next.Zone, owner + next.ApexOffset, limit, authoritative, recursion);
            }
            if (next.Set is { Type: DnsType.CNAME } again)
            {
                for (var i = 0; i < hop; i++)
                {
                    if (ReferenceEquals(aliases[i], again)) return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit, authoritative, recursion);
                }
                aliases[hop] = again;
                if (!Append(response, ref body, ref answers, next, owner, q.OverTcp && !recursion)) return Overflow(response, q, answers, body, limit, recursion);
                owner = body - again.Encoded.Length + RecordHeaderLength;
                target = again.Target;
                continue;
            }
            if (!Append(response, ref body, ref answers, next, owner, q.OverTcp && !recursion)) return Overflow(response, q, answers, body, limit, recursion);
            break;
        }
        return FinishAuthoritative(response, q, Rcode.NoError, answers, body, null, 0, limit, authoritative, recursion);
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
            // Address records are all one size: a rotated set is its two halves swapped.
            var split = fits && set.NextFirst() is > 0 and var first ? first * (encoded.Length / count) : 0;
            encoded[split..].CopyTo(records);
            encoded[..split].CopyTo(records[(encoded.Length - split)..]);
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

    /// <summary>
    /// A response from our zones: the answers before <paramref name="body"/>, then the zone's SOA
    /// if one is given. AA unless part of it is an upstream's plain reply
    /// (<paramref name="authoritative"/> false); RA when an upstream's records are in it.
    /// </summary>
    private int FinishAuthoritative(Span<byte> response, in DnsQuery q, Rcode rcode, int answers, int body, Zone? soaZone, int soaOwner, int limit,
        bool authoritative = true, bool recursion = false)
    {
        var authority = 0;
        if (soaZone is not null)
        {
            if (body + 2 + soaZone.SoaTail.Length > response.Length) return Overflow(response, q, answers, body, limit, recursion);
            BinaryPrimitives.WriteUInt16BigEndian(response[body..], (ushort)(0xC000 | soaOwner));
            soaZone.SoaTail.CopyTo(response[(body + 2)..]);
            body += 2 + soaZone.SoaTail.Length;
            authority = 1;
        }
        return Complete(response, q, rcode, authoritative, answers, authority, body - q.QuestionEnd, 0, limit, truncated: false, recursion: recursion);
    }

    /// <summary>
    /// SRV and NS answers (the set copied right after the question) with their targets' address
    /// sets in the additional section: the whole sets that fit within the response's limit (the
    /// rest left out, and not truncated: RFC 2181 §9), each owner a pointer into the answer.
    /// </summary>
    private int WithAdditional(Span<byte> response, in DnsQuery q, int answers, int body, RecordSet srv, int limit)
    {
        var end = Math.Min(response.Length, limit - (q.HasOpt ? OptLength : 0));
        var (count, length) = end > body ? srv.WriteAdditional(response[..end], body, q.QuestionEnd) : (0, 0);
        return Complete(response, q, Rcode.NoError, true, answers, 0, body - q.QuestionEnd, 0, limit, truncated: false, count, length);
    }

    /// <summary>
    /// The answer does not fit the buffer: TC, and no records (over TCP, the
    /// <paramref name="answers"/> before <paramref name="body"/> that fit, unless an upstream's
    /// records, owned by names in full, are among them: <paramref name="upstreams"/>).
    /// </summary>
    private int Overflow(Span<byte> response, in DnsQuery q, int answers, int body, int limit, bool upstreams = false) => upstreams
        ? Complete(response, q, Rcode.NoError, false, 0, 0, 0, 0, limit, truncated: true, recursion: true)
        : Complete(response, q, Rcode.NoError, true, answers, 0, body - q.QuestionEnd, 0, limit, truncated: true);

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
        ReadOnlySpan<byte> records, int extendedRcode, int limit, bool recursion = false)
    {
        var body = q.QuestionEnd;
        var truncated = body + records.Length > response.Length;
        if (!truncated)
        {
            records.CopyTo(response[body..]);
        }
        return Complete(response, q, rcode, authoritative, truncated ? 0 : answers, authority, truncated ? 0 : records.Length, extendedRcode, limit, truncated,
            recursion: recursion);
    }

    /// <summary>
    /// Header, question, OPT; applies the size limit (TC and no records when over; over TCP the
    /// whole records that fit stay, since a client has nowhere else to ask). Additional records
    /// written after the others are kept only when everything fits; without them the answer is
    /// still whole. <paramref name="recursion"/> sets RA: the answer holds what the forwarders
    /// resolved for this client.
    /// </summary>
    private int Complete(Span<byte> response, in DnsQuery q, Rcode rcode, bool authoritative, int answers, int authority,
        int recordBytes, int extendedRcode, int limit, bool truncated, int additional = 0, int additionalBytes = 0, bool recursion = false)
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
        WriteHeader(response, q, rcode, authoritative, q.QuestionEnd > QueryParser.HeaderLength ? 1 : 0, answers, authority, additional + (q.HasOpt ? 1 : 0), truncated, recursion);
        var end = q.QuestionEnd + recordBytes + additionalBytes;
        if (q.HasOpt)
        {
            // The DO bit is copied from the query (RFC 3225 §3); nothing here is signed.
            OptRecord.Write(response[end..], MaxUdpPayload, extendedRcode, q.DnssecOk);
            end += OptLength;
        }
        Metrics.Count(q.Type, extendedRcode << 4 | (int)rcode);
        return end;
    }

    /// <summary>The most a response may hold: TCP's message, or the client's UDP payload size (512 without EDNS).</summary>
    private int Limit(in DnsQuery q, bool tcp, int room) =>
        tcp ? room : Math.Min(room, q.HasOpt ? Math.Clamp((int)q.UdpPayloadSize, 512, MaxUdpPayload) : 512);

    /// <summary>
    /// A signed query (RFC 8945). This server holds no keys, so it cannot verify any: NOTAUTH,
    /// the question and OPT echoed, and a TSIG record with error BADKEY and no MAC (§5.2.1,
    /// §5.3.2), before anything else about the query is looked at. Nothing is answered that a
    /// client could take for a verified reply.
    /// </summary>
    private int Unverifiable(ReadOnlySpan<byte> query, Span<byte> response, in DnsQuery q, bool tcp)
    {
        query[QueryParser.HeaderLength..q.QuestionEnd].CopyTo(response[QueryParser.HeaderLength..]);
        var end = q.QuestionEnd;
        if (q.HasOpt)
        {
            OptRecord.Write(response[end..], MaxUdpPayload, 0, q.DnssecOk);
            end += OptLength;
        }
        var limit = Limit(q, tcp, response.Length);
        var tsig = TsigRecord.WriteBadKey(query, q.TsigOwner, q.TsigData, response[end..limit]);
        WriteHeader(response, q, Rcode.NotAuth, false, q.QuestionEnd > QueryParser.HeaderLength ? 1 : 0, 0, 0, (q.HasOpt ? 1 : 0) + (tsig > 0 ? 1 : 0), truncated: tsig < 0);
        Metrics.Count(q.Type, (int)Rcode.NotAuth);
        return tsig > 0 ? end + tsig : end;
    }

    private static int WriteHeader(Span<byte> response, in DnsQuery q, Rcode rcode, bool authoritative, int questions, int answers, int authority, int additional,
        bool truncated = false, bool recursion = false)
    {
        BinaryPrimitives.WriteUInt16BigEndian(response, q.Id);
        var flags = 0x8000 | (q.Opcode << 11) | (authoritative ? 0x0400 : 0) | (truncated ? 0x0200 : 0)
            | (q.RecursionDesired ? 0x0100 : 0) | (recursion ? 0x0080 : 0) | (q.CheckingDisabled ? 0x0010 : 0) | ((int)rcode & 0xF);
        BinaryPrimitives.WriteUInt16BigEndian(response[2..], (ushort)flags);
        BinaryPrimitives.WriteUInt16BigEndian(response[4..], (ushort)questions);
        BinaryPrimitives.WriteUInt16BigEndian(response[6..], (ushort)answers);
        BinaryPrimitives.WriteUInt16BigEndian(response[8..], (ushort)authority);
        BinaryPrimitives.WriteUInt16BigEndian(response[10..], (ushort)additional);
        return QueryParser.HeaderLength;
    }
}
