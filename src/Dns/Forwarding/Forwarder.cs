using System.Buffers.Binary;
using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Forwarding;

/// <summary>
/// Forwards queries for names outside our zones to upstream servers over UDP and caches the
/// answers for their smallest TTL (negative answers for their SOA's), bounded in entries with
/// oldest-first eviction. Each upstream query uses a fresh socket (a random source port) and a
/// random id, and only a reply from the upstream with that id and question is accepted.
/// </summary>
public sealed class Forwarder(ForwarderOptions options, TimeProvider time)
{
    private readonly IPEndPoint[] _upstreams = [.. options.Forwarders.Select(IPEndPoint.Parse)];
    private readonly ConcurrentDictionary<string, Entry> _cache = new(StringComparer.Ordinal);
    private readonly ConcurrentQueue<string> _order = new();
    private int _next;

    private sealed record Entry(byte[] Response, DateTimeOffset Expires);

    public int CachedEntries => _cache.Count;

    /// <summary>Writes a cached answer (with the query's id) and returns its length, or 0 on a miss.</summary>
    public int TryAnswerFromCache(ReadOnlySpan<char> name, in DnsQuery query, Span<byte> response)
    {
        var key = Key(name, query.Type, query.Class);
        if (!_cache.TryGetValue(key, out var entry) || entry.Expires <= time.GetUtcNow() || entry.Response.Length > response.Length)
        {
            return 0;
        }
        entry.Response.CopyTo(response);
        BinaryPrimitives.WriteUInt16BigEndian(response, query.Id);
        return entry.Response.Length;
    }

    /// <summary>Asks the upstreams; returns the response length, or 0 if none answered (the caller sends SERVFAIL).</summary>
    public async Task<int> ForwardAsync(byte[] query, Memory<byte> response, CancellationToken cancellationToken)
    {
        var clientId = BinaryPrimitives.ReadUInt16BigEndian(query);
        var upstreamQuery = (byte[])query.Clone();
        var buffer = new byte[65535];
        for (var attempt = 0; attempt < _upstreams.Length; attempt++)
        {
            var upstream = _upstreams[(int)((uint)Interlocked.Increment(ref _next) % (uint)_upstreams.Length)];
            var id = (ushort)Random.Shared.Next(0, 65536);
            BinaryPrimitives.WriteUInt16BigEndian(upstreamQuery, id);
            using var socket = new Socket(upstream.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            timeout.CancelAfter(options.ForwardTimeout);
            try
            {
                await socket.ConnectAsync(upstream, timeout.Token).ConfigureAwait(false);
                await socket.SendAsync(upstreamQuery, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                while (true)
                {
                    var length = await socket.ReceiveAsync(buffer, SocketFlags.None, timeout.Token).ConfigureAwait(false);
                    if (!Matches(buffer.AsSpan(0, length), upstreamQuery, id) || length > response.Length) continue;
                    BinaryPrimitives.WriteUInt16BigEndian(buffer, clientId);
                    buffer.AsSpan(0, length).CopyTo(response.Span);
                    Remember(query, buffer.AsSpan(0, length));
                    return length;
                }
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
        return 0;
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

    private void Remember(byte[] query, ReadOnlySpan<byte> reply)
    {
        if ((reply[2] & 0x02) != 0 || options.CacheSize <= 0) return; // truncated: not worth keeping
        var rcode = reply[3] & 0xF;
        if (rcode is not (0 or 3)) return;
        var ttl = MinimumTtl(reply);
        if (ttl is null or 0) return;
        Span<char> name = stackalloc char[DnsName.MaxWireLength];
        if (QueryParser.Parse(query, name, out var q) != ParseOutcome.Ok) return;
        var key = Key(name[..q.NameLength], q.Type, q.Class);
        var expires = time.GetUtcNow() + TimeSpan.FromSeconds(Math.Min(ttl.Value, options.MaxCacheTtl.TotalSeconds));
        if (_cache.TryAdd(key, new Entry(reply.ToArray(), expires)))
        {
            _order.Enqueue(key);
            while (_cache.Count > options.CacheSize && _order.TryDequeue(out var oldest))
            {
                _cache.TryRemove(oldest, out _);
            }
        }
        else
        {
            _cache[key] = new Entry(reply.ToArray(), expires);
        }
    }

    /// <summary>The smallest TTL of the answer and authority records (RFC 2308 for negatives), or null if unreadable.</summary>
    private static uint? MinimumTtl(ReadOnlySpan<byte> reply)
    {
        var counts = BinaryPrimitives.ReadUInt16BigEndian(reply[6..]) + BinaryPrimitives.ReadUInt16BigEndian(reply[8..]);
        var offset = DnsName.Skip(reply, 12);
        if (offset < 0) return null;
        offset += 4;
        uint? minimum = null;
        for (var i = 0; i < counts; i++)
        {
            offset = DnsName.Skip(reply, offset);
            if (offset < 0 || offset + 10 > reply.Length) return null;
            var ttl = BinaryPrimitives.ReadUInt32BigEndian(reply[(offset + 4)..]);
            minimum = minimum is null ? ttl : Math.Min(minimum.Value, ttl);
            offset += 10 + BinaryPrimitives.ReadUInt16BigEndian(reply[(offset + 8)..]);
        }
        return minimum;
    }

    private static string Key(ReadOnlySpan<char> name, ushort type, ushort @class) => $"{name}/{type}/{@class}";
}
