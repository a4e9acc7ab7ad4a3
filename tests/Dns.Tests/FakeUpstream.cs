using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// An upstream DNS server written for the tests: UDP and TCP on one loopback port, each reply
/// built by the test from the query (null: no reply), so a reply can carry what a real
/// resolver's would (compression pointers, its own OPT, TC) exactly as the test needs.
/// </summary>
internal sealed class FakeUpstream : IAsyncDisposable
{
    private readonly Socket _udp = new(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
    private readonly Socket _tcp = new(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
    private readonly Func<FakeQuery, byte[]?> _answer;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private readonly List<FakeQuery> _queries = [];

    private readonly TimeSpan _delay;

    /// <param name="delay">How long each UDP reply is held back (a slow upstream); other queries are read meanwhile.</param>
    public FakeUpstream(Func<FakeQuery, byte[]?> answer, TimeSpan delay = default)
    {
        _answer = answer;
        _delay = delay;
        var endpoint = IPEndPoint.Parse(TestPorts.Loopback());
        _udp.Bind(endpoint);
        _tcp.Bind(endpoint);
        _tcp.Listen(16);
        EndPoint = endpoint;
        _loops.Add(Task.Run(UdpLoopAsync));
        _loops.Add(Task.Run(AcceptLoopAsync));
    }

    public IPEndPoint EndPoint { get; }

    /// <summary>Every query received so far.</summary>
    public IReadOnlyList<FakeQuery> Queries
    {
        get { lock (_queries) return [.. _queries]; }
    }

    private FakeQuery Received(byte[] message, bool tcp)
    {
        var query = new FakeQuery(message, tcp);
        lock (_queries) _queries.Add(query);
        return query;
    }

    private async Task UdpLoopAsync()
    {
        var buffer = new byte[65535];
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var received = await _udp.ReceiveFromAsync(buffer, SocketFlags.None, new IPEndPoint(IPAddress.Any, 0), _stop.Token);
                if (_answer(Received(buffer[..received.ReceivedBytes], tcp: false)) is { } reply)
                {
                    if (_delay > TimeSpan.Zero) _ = SendLaterAsync(reply, received.RemoteEndPoint);
                    else await _udp.SendToAsync(reply, SocketFlags.None, received.RemoteEndPoint, _stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
            }
        }
    }

    private async Task SendLaterAsync(byte[] reply, EndPoint client)
    {
        try
        {
            await Task.Delay(_delay, _stop.Token);
            await _udp.SendToAsync(reply, SocketFlags.None, client, _stop.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
        {
        }
    }

    private async Task AcceptLoopAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                using var connection = await _tcp.AcceptAsync(_stop.Token);
                var length = new byte[2];
                await connection.ReceiveAsync(length, SocketFlags.None, _stop.Token);
                var message = new byte[BinaryPrimitives.ReadUInt16BigEndian(length)];
                for (var read = 0; read < message.Length;)
                {
                    var n = await connection.ReceiveAsync(message.AsMemory(read), SocketFlags.None, _stop.Token);
                    if (n == 0) break;
                    read += n;
                }
                if (_answer(Received(message, tcp: true)) is { } reply)
                {
                    var framed = new byte[2 + reply.Length];
                    BinaryPrimitives.WriteUInt16BigEndian(framed, (ushort)reply.Length);
                    reply.CopyTo(framed, 2);
                    await connection.SendAsync(framed, SocketFlags.None, _stop.Token);
                }
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException or SocketException)
            {
                if (_stop.IsCancellationRequested) return;
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        _udp.Dispose();
        _tcp.Dispose();
        await Task.WhenAll(_loops);
        _stop.Dispose();
    }
}

/// <summary>A query the fake upstream received: its name (lower-case), type, flags and OPT.</summary>
internal sealed class FakeQuery
{
    public FakeQuery(byte[] message, bool tcp)
    {
        Message = message;
        OverTcp = tcp;
        Span<char> name = stackalloc char[DnsName.MaxWireLength];
        QueryParser.Parse(message, name, out var parsed);
        Parsed = parsed;
        Name = name[..parsed.NameLength].ToString();
    }

    public byte[] Message { get; }

    public bool OverTcp { get; }

    public DnsQuery Parsed { get; }

    public string Name { get; }

    /// <summary>A reply to this query: its id and question, the given flags, then the records.</summary>
    public ReplyBuilder Reply(ushort flags) => new(Message, Parsed.QuestionEnd, flags);
}

/// <summary>Builds a reply record by record; owners and names in data may be compression pointers.</summary>
internal sealed class ReplyBuilder(byte[] query, int questionEnd, ushort flags)
{
    /// <summary>A pointer to the question's name, as most servers write answer owners.</summary>
    public static readonly byte[] QuestionName = [0xC0, 0x0C];

    private readonly List<byte>[] _sections = [[], [], []];
    private readonly int[] _counts = new int[3];

    /// <summary>Where the next record's data would start in the message (to point at names in it).</summary>
    public int Offset(int section, byte[] owner) => questionEnd + _sections.Take(section + 1).Sum(s => s.Count) + owner.Length + 10;

    public ReplyBuilder Record(int section, byte[] owner, DnsType type, uint ttl, byte[] data)
    {
        var record = _sections[section];
        record.AddRange(owner);
        Span<byte> fixedPart = stackalloc byte[10];
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart, (ushort)type);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[2..], type == DnsType.OPT ? (ushort)4096 : (ushort)1);
        BinaryPrimitives.WriteUInt32BigEndian(fixedPart[4..], ttl);
        BinaryPrimitives.WriteUInt16BigEndian(fixedPart[8..], (ushort)data.Length);
        record.AddRange(fixedPart.ToArray());
        record.AddRange(data);
        _counts[section]++;
        return this;
    }

    public ReplyBuilder Answer(byte[] owner, DnsType type, uint ttl, byte[] data) => Record(0, owner, type, ttl, data);

    /// <summary>The upstream's own OPT: payload 4096, the given extended rcode and DO.</summary>
    public ReplyBuilder Opt(byte extendedRcode = 0, bool dnssecOk = false) =>
        Record(2, [0], DnsType.OPT, (uint)(extendedRcode << 24 | (dnssecOk ? 0x8000 : 0)), []);

    public byte[] Build()
    {
        var message = new List<byte>(query[..questionEnd]);
        BinaryPrimitives.WriteUInt16BigEndian(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(message)[2..], flags);
        for (var i = 0; i < 3; i++) BinaryPrimitives.WriteUInt16BigEndian(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(message)[(6 + 2 * i)..], (ushort)_counts[i]);
        foreach (var section in _sections) message.AddRange(section);
        return [.. message];
    }
}
