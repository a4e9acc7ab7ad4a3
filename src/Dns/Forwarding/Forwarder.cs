using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Forwarding;

/// <summary>
/// Resolves names outside our zones through upstream servers and caches the replies as
/// <see cref="ForwardedAnswer"/>s, which the handler shapes for each client (its id, flags,
/// question, EDNS and size limit; TTLs counted down). A reply is kept until its smallest TTL
/// passes (negative answers: their SOA's, RFC 2308), at most <see cref="ForwarderOptions.MaxCacheTtl"/>,
/// bounded in entries with oldest-first eviction.
/// <para>
/// The upstream query is our own, whatever the client sent: the question (lower-case), RD, the
/// client's CD, and an OPT of 1232 bytes with the client's DO. DO and CD change what an upstream
/// returns, so they are part of the cache key beside name, type and class. Each upstream query
/// uses a fresh socket (a random source port) and a random id, and only a reply from the
/// upstream with that id and question is accepted; a truncated UDP reply is asked again of the
/// same upstream over TCP.
/// </para>
/// </summary>
public sealed class Forwarder
{
    /// <summary>Room for a cache key: the name's text and three characters (type, class, DO and CD).</summary>
    public const int MaxKeyLength = DnsName.MaxWireLength + 3;

    private const int UpstreamPayload = 1232;

    private readonly ForwarderOptions _options;
    private readonly TimeProvider _time;
    private readonly IPEndPoint[] _upstreams;
    private readonly ConcurrentDictionary<string, ForwardedAnswer> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, ForwardedAnswer>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly ConcurrentQueue<string> _order = new();
    private int _next;

    public Forwarder(ForwarderOptions options, TimeProvider time)
    {
        _options = options;
        _time = time;
        _upstreams = [.. options.Forwarders.Select(IPEndPoint.Parse)];
        _lookup = _cache.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public int CachedEntries => _cache.Count;

    public DateTimeOffset Now => _time.GetUtcNow();

    /// <summary>
    /// Writes the cache key of a question into <paramref name="key"/> (at least
    /// <see cref="MaxKeyLength"/>) and returns its length: the name's text, then type, class
    /// and the DO and CD bits, one character each.
    /// </summary>
    public static int Key(ReadOnlySpan<char> name, ushort type, ushort @class, bool dnssecOk, bool checkingDisabled, Span<char> key)
    {
        name.CopyTo(key);
        key[name.Length] = (char)type;
        key[name.Length + 1] = (char)@class;
        key[name.Length + 2] = (char)((dnssecOk ? 1 : 0) | (checkingDisabled ? 2 : 0));
        return name.Length + 3;
    }

    /// <summary>The cached reply for <paramref name="key"/>, or null when there is none or it is stale. Allocates nothing.</summary>
    public ForwardedAnswer? Cached(ReadOnlySpan<char> key) =>
        _lookup.TryGetValue(key, out var entry) && entry.FreshAt(Now) ? entry : null;

    /// <summary>
    /// Asks the upstreams for <paramref name="name"/> (text form, as <see cref="DnsName.Read"/>
    /// gives it), caches the reply when it can be cached and returns it; null when no upstream
    /// answered usably (the caller answers SERVFAIL).
    /// </summary>
    public async Task<ForwardedAnswer?> ResolveAsync(string name, ushort type, ushort @class, bool dnssecOk, bool checkingDisabled, CancellationToken cancellationToken)
    {
        var query = Query(name, type, @class, dnssecOk, checkingDisabled);
        if (query is null) return null;
        var key = new string(KeyOf(name, type, @class, dnssecOk, checkingDisabled));
        var buffer = new byte[65535];
        for (var attempt = 0; attempt < _upstreams.Length; attempt++)
        {
            var upstream = _upstreams[(int)((uint)Interlocked.Increment(ref _next) % (uint)_upstreams.Length)];
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(_options.ForwardTimeout);
            try
            {
                var reply = buffer.AsMemory(0, await AskUdpAsync(upstream, query, buffer, timeout.Token).ConfigureAwait(false));
                if ((buffer[2] & 0x02) != 0)
                {
                    // Truncated: the whole answer over TCP; failing that, the truncated one (TC reaches the client).
                    var whole = new byte[65535];
                    var length = await AskTcpAsync(upstream, query, whole, timeout.Token).ConfigureAwait(false);
                    if (length > 0) reply = whole.AsMemory(0, length);
                }
                if (ForwardedAnswer.Parse(reply.Span, key, Now, _options.MaxCacheTtl) is not { } answer) continue;
                Remember(answer);
                return answer;
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
                // This upstream was too slow: try the next.
            }
            catch (SocketException)
            {
                // Unreachable: try the next.
            }
        }
        return null;
    }

    private static char[] KeyOf(string name, ushort type, ushort @class, bool dnssecOk, bool checkingDisabled)
    {
        var key = new char[name.Length + 3];
        Key(name, type, @class, dnssecOk, checkingDisabled, key);
        return key;
    }

    /// <summary>Header (id set per attempt), the question, and an OPT record; null when the name cannot be written.</summary>
    private static byte[]? Query(string name, ushort type, ushort @class, bool dnssecOk, bool checkingDisabled)
    {
        Span<byte> wire = stackalloc byte[DnsName.MaxWireLength];
        var nameLength = DnsName.Write(name, wire);
        if (nameLength < 0) return null;
        var query = new byte[QueryParser.HeaderLength + nameLength + 4 + OptRecord.Length];
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(2), (ushort)(0x0100 | (checkingDisabled ? 0x0010 : 0)));
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(10), 1);
        wire[..nameLength].CopyTo(query.AsSpan(QueryParser.HeaderLength));
        var at = QueryParser.HeaderLength + nameLength;
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(at), type);
        BinaryPrimitives.WriteUInt16BigEndian(query.AsSpan(at + 2), @class);
        OptRecord.Write(query.AsSpan(at + 4), UpstreamPayload, 0, dnssecOk);
        return query;
    }

    /// <summary>Sends the query with a fresh id from a fresh port; returns the length of the first matching reply.</summary>
    private static async Task<int> AskUdpAsync(IPEndPoint upstream, byte[] query, byte[] buffer, CancellationToken cancellationToken)
    {
        var id = (ushort)Random.Shared.Next(0, 65536);
        BinaryPrimitives.WriteUInt16BigEndian(query, id);
        using var socket = new Socket(upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        await socket.ConnectAsync(upstream, cancellationToken).ConfigureAwait(false);
        await socket.SendAsync(query, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        while (true)
        {
            var length = await socket.ReceiveAsync(buffer, SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (Matches(buffer.AsSpan(0, length), query, id)) return length;
        }
    }

    /// <summary>The query over TCP (RFC 7766: two-byte length, then the message); the reply's length, or 0 when none came or it does not match.</summary>
    private static async Task<int> AskTcpAsync(IPEndPoint upstream, byte[] query, byte[] buffer, CancellationToken cancellationToken)
    {
        try
        {
            return await ExchangeTcpAsync(upstream, query, buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (SocketException)
        {
            return 0;
        }
    }

    private static async Task<int> ExchangeTcpAsync(IPEndPoint upstream, byte[] query, byte[] buffer, CancellationToken cancellationToken)
    {
        var id = (ushort)Random.Shared.Next(0, 65536);
        BinaryPrimitives.WriteUInt16BigEndian(query, id);
        using var socket = new Socket(upstream.AddressFamily, SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        await socket.ConnectAsync(upstream, cancellationToken).ConfigureAwait(false);
        var framed = new byte[2 + query.Length];
        BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)query.Length);
        query.CopyTo(framed, 2);
        await socket.SendAsync(framed, SocketFlags.None, cancellationToken).ConfigureAwait(false);
        if (!await ReadExactlyAsync(socket, buffer.AsMemory(0, 2), cancellationToken).ConfigureAwait(false)) return 0;
        var length = BinaryPrimitives.ReadUInt16BigEndian(buffer);
        if (!await ReadExactlyAsync(socket, buffer.AsMemory(0, length), cancellationToken).ConfigureAwait(false)) return 0;
        return Matches(buffer.AsSpan(0, length), query, id) ? length : 0;
    }

    private static async ValueTask<bool> ReadExactlyAsync(Socket socket, Memory<byte> destination, CancellationToken cancellationToken)
    {
        for (var read = 0; read < destination.Length;)
        {
            var n = await socket.ReceiveAsync(destination[read..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    /// <summary>A reply must carry our id, be a response, and repeat our question exactly.</summary>
    private static bool Matches(ReadOnlySpan<byte> reply, byte[] query, ushort id)
    {
        if (reply.Length < 12 || BinaryPrimitives.ReadUInt16BigEndian(reply) != id || (reply[2] & 0x80) == 0) return false;
        var questionEnd = DnsName.Skip(query, 12) + 4;
        return questionEnd > 4 && reply.Length >= questionEnd
            && BinaryPrimitives.ReadUInt16BigEndian(reply[4..]) == 1
            && reply[12..questionEnd].SequenceEqual(query.AsSpan(12, questionEnd - 12));
    }

    /// <summary>Keeps a whole, untruncated NOERROR or NXDOMAIN reply with a TTL above 0.</summary>
    private void Remember(ForwardedAnswer answer)
    {
        if (_options.CacheSize <= 0 || answer.Truncated || !answer.Whole || answer.Rcode is not (Rcode.NoError or Rcode.NXDomain) || answer.ExtendedRcode != 0
            || answer.MinimumTtl is null or 0)
        {
            return;
        }
        if (_cache.TryAdd(answer.Key, answer))
        {
            _order.Enqueue(answer.Key);
            while (_cache.Count > _options.CacheSize && _order.TryDequeue(out var oldest))
            {
                _cache.TryRemove(oldest, out _);
            }
        }
        else
        {
            _cache[answer.Key] = answer;
        }
    }
}
