using System.Buffers;
using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.Hosting;
using ControlPlane.Dns.Handling;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Dns.Transport;

/// <summary>
/// UDP and TCP on one address and port. UDP: several receive loops share one socket, each with
/// its own buffers and socket address (nothing allocated per query). TCP: length-prefixed
/// messages, several queries per connection, each answered as soon as its answer is ready (a slow
/// upstream holds up no other), bounds on connections and on forwarded queries outstanding per
/// connection, and an idle timeout, so a flood cannot exhaust memory.
/// </summary>
public sealed class DnsListener : IAsyncDisposable
{
    private readonly QueryHandler _handler;
    private readonly DnsTransportOptions _options;
    private readonly ILogger _logger;
    private readonly Socket _udp;
    private readonly Socket _tcp;
    private readonly CancellationTokenSource _stop = new();
    private readonly List<Task> _loops = [];
    private int _connections;
    private readonly bool _wildcard;

    public DnsListener(QueryHandler handler, DnsTransportOptions options, ILogger logger)
    {
        _handler = handler;
        _options = options;
        _logger = logger;
        var endpoint = IPEndPoint.Parse(options.Listen);
        // "[::]:port" serves IPv4 too, as IPv4-mapped addresses: ClientAddress reads those as the
        // IPv4 address they are, so rate limiting and the recursion gate treat both alike.
        var dualStack = endpoint.Address.Equals(IPAddress.IPv6Any);
        IPEndPoint bound;
        // Port 0: the kernel picks a free UDP port, whose TCP twin may be taken; then pick again.
        for (var attempt = 1; ; attempt++)
        {
            _udp = new Socket(endpoint.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            if (dualStack) _udp.DualMode = true;
            // Room for bursts: the kernel drops what does not fit while every loop is busy.
            _udp.ReceiveBufferSize = 4 * 1024 * 1024;
            MultiMessageUdp.SetReceiveTimeout(_udp, TimeSpan.FromMilliseconds(250));
            try
            {
                _udp.Bind(endpoint);
            }
            catch (SocketException e)
            {
                _udp.Dispose();
                throw ListenAddress.Failed("Dns:Listen", endpoint, ProtocolType.Udp, e);
            }
            bound = (IPEndPoint)_udp.LocalEndPoint!;
            // A wildcard address answers from the address each query was sent to (MultiMessageUdp).
            _wildcard = (endpoint.Address.Equals(IPAddress.Any) || dualStack) && OperatingSystem.IsLinux() && Environment.Is64BitProcess;
            if (_wildcard) MultiMessageUdp.EnableDestinationAddresses(_udp);
            _tcp = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
            if (dualStack) _tcp.DualMode = true;
            _tcp.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            try
            {
                _tcp.Bind(bound);
                break;
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressAlreadyInUse && endpoint.Port == 0 && attempt < 20)
            {
                _tcp.Dispose();
                _udp.Dispose();
            }
            catch (SocketException e)
            {
                _tcp.Dispose();
                _udp.Dispose();
                throw ListenAddress.Failed("Dns:Listen", bound, ProtocolType.Tcp, e);
            }
        }
        _tcp.Listen(512);
        LocalEndPoint = bound;
    }

    /// <summary>The bound address (with the actual port when 0 was asked).</summary>
    public IPEndPoint LocalEndPoint { get; }

    public void Start()
    {
        var loops = _options.Threads > 0 ? _options.Threads : Environment.ProcessorCount;
        for (var i = 0; i < loops; i++)
        {
            // Blocking receive/send on dedicated threads: no async hand-off per datagram. (The
            // name, port included, fits Linux's 15 characters: top -H tells servers apart.)
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            new Thread(() => { UdpLoop(_stop.Token); done.SetResult(); }) { IsBackground = true, Name = $"dns-udp-{LocalEndPoint.Port}-{i}" }.Start();
            _loops.Add(done.Task);
        }
        _loops.Add(Task.Run(() => AcceptLoopAsync(_stop.Token)));
    }

    private void UdpLoop(CancellationToken cancellationToken)
    {
        if (OperatingSystem.IsLinux() && (Environment.Is64BitProcess))
        {
            using var batch = new MultiMessageUdp(_udp, _handler, _options.MaxUdpPayload, _wildcard, (query, client, destination) => _ = ForwardUdpAsync(query, client, destination));
            batch.Run(cancellationToken);
            return;
        }
        var request = new byte[65535];
        var response = new byte[Math.Max(512, _options.MaxUdpPayload)];
        var client = new SocketAddress(_udp.AddressFamily);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                var received = _udp.ReceiveFrom(request, SocketFlags.None, client);
                var length = _handler.Handle(request.AsSpan(0, received), response, tcp: false, client.Buffer.Span[..client.Size]);
                if (length == QueryHandler.Forward)
                {
                    var copy = new SocketAddress(client.Family, client.Size);
                    client.Buffer.Span[..client.Size].CopyTo(copy.Buffer.Span);
                    _ = ForwardUdpAsync(request.AsSpan(0, received).ToArray(), copy, null);
                }
                else if (length > 0)
                {
                    _udp.SendTo(response.AsSpan(0, length), SocketFlags.None, client);
                }
            }
            catch (SocketException e) when (!cancellationToken.IsCancellationRequested)
            {
                // One client's unreachable port must not stop the server.
                _logger.LogDebug(e, "UDP send or receive failed");
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return; // closed by DisposeAsync
            }
        }
    }

    /// <summary>Off the receive loop: finish the answer with the upstreams (<see cref="QueryHandler.ResolveAsync"/>), then send it from any thread.</summary>
    /// <param name="destination">The address the query was sent to (packet information), to answer from; null when the socket is bound to one.</param>
    private async Task ForwardUdpAsync(byte[] query, SocketAddress client, byte[]? destination)
    {
        try
        {
            var response = new byte[Math.Max(512, _options.MaxUdpPayload)];
            var length = await _handler.ResolveAsync(query, response, tcp: false, _stop.Token).ConfigureAwait(false);
            if (length > 0 && destination is not null)
            {
                MultiMessageUdp.SendFrom(_udp, response.AsSpan(0, length), client, destination);
            }
            else if (length > 0)
            {
                // Never an async operation on the listening socket: .NET would make it
                // non-blocking for good, and the receive loops' recvmmsg would return EAGAIN at once.
                _udp.SendTo(response.AsSpan(0, length), SocketFlags.None, client);
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Shutting down, or the client went away.
        }
    }

    private async Task AcceptLoopAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = await _tcp.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                return;
            }
            catch (SocketException)
            {
                continue;
            }
            if (Interlocked.Increment(ref _connections) > _options.MaxTcpConnections && !CloseIdlest())
            {
                Interlocked.Decrement(ref _connections);
                connection.Dispose();
                continue;
            }
            _ = ServeTcpAsync(connection, cancellationToken);
        }
    }

    /// <summary>
    /// A TCP connection: since when it has waited for its next query with nothing outstanding (0
    /// while it answers), how to close it, its forwarded queries still being answered (bounded by
    /// their slots), and the lock that keeps two responses from being interleaved on the stream.
    /// </summary>
    private sealed class TcpSession(Socket connection, int maxInFlight, TimeSpan sendTimeout) : IDisposable
    {
        public readonly CancellationTokenSource Close = new();
        public long IdleSince;

        /// <summary>One per forwarded query being answered: when none is left the reader waits, and stops reading.</summary>
        public readonly SemaphoreSlim Slots = new(maxInFlight, maxInFlight);

        private readonly SemaphoreSlim _sending = new(1, 1);
        private readonly TaskCompletionSource _drained = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private int _outstanding = 1; // the reader's own, and one per forwarded query
        private bool _reading;
        private bool _aborted;

        private int InFlight => maxInFlight - Slots.CurrentCount;

        /// <summary>The reader waits for the next query: the connection is idle (first to close for room) unless answers are outstanding.</summary>
        public void Waiting()
        {
            Volatile.Write(ref _reading, true);
            Volatile.Write(ref IdleSince, InFlight == 0 ? System.Diagnostics.Stopwatch.GetTimestamp() : 0);
        }

        /// <summary>A query came: not to be closed for room (unless already claimed, then it ends at its next read).</summary>
        public void Answering()
        {
            Volatile.Write(ref _reading, false);
            Interlocked.Exchange(ref IdleSince, 0);
        }

        /// <summary>A forwarded query is about to be answered off the reader (its slot taken).</summary>
        public void Started() => Interlocked.Increment(ref _outstanding);

        /// <summary>A forwarded query's answer went out, or never will: its slot is free; the last one may leave the connection idle.</summary>
        public void Finished()
        {
            Slots.Release();
            if (InFlight == 0 && Volatile.Read(ref _reading)) Interlocked.CompareExchange(ref IdleSince, System.Diagnostics.Stopwatch.GetTimestamp(), 0);
            Leave();
        }

        /// <summary>Completes once the reader has stopped and every forwarded query it started has been answered.</summary>
        public Task DrainAsync()
        {
            Leave();
            return _drained.Task;
        }

        private void Leave()
        {
            if (Interlocked.Decrement(ref _outstanding) == 0) _drained.TrySetResult();
        }

        /// <summary>
        /// Sends one length-prefixed response whole, alone on the stream. A send that fails, or
        /// that the client does not take within <paramref name="sendTimeout"/>, may have left part
        /// of a response behind: the connection is then closed (every later send refused), since
        /// the stream's framing cannot be trusted any more. False when nothing more can be sent.
        /// </summary>
        public async Task<bool> SendAsync(ReadOnlyMemory<byte> framed, CancellationToken cancellationToken)
        {
            try
            {
                await _sending.WaitAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            try
            {
                if (_aborted) return false;
                using var limit = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
                limit.CancelAfter(sendTimeout);
                await connection.SendAsync(framed, SocketFlags.None, limit.Token).ConfigureAwait(false);
                return true;
            }
            catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                Abort();
                return false;
            }
            finally
            {
                _sending.Release();
            }
        }

        /// <summary>Ends the connection now: the reader stops, and nothing more is sent.</summary>
        public void Abort()
        {
            Volatile.Write(ref _aborted, true);
            try
            {
                Close.Cancel();
                connection.Shutdown(SocketShutdown.Both);
            }
            catch (Exception e) when (e is ObjectDisposedException or SocketException)
            {
                // Already gone.
            }
        }

        public void Dispose()
        {
            Close.Dispose();
            Slots.Dispose();
            _sending.Dispose();
        }
    }

    private readonly System.Collections.Concurrent.ConcurrentDictionary<TcpSession, byte> _sessions = new();

    /// <summary>
    /// At the connection limit: closes the connection that has waited longest for a query, so that
    /// clients holding idle connections cannot keep a new one (the TCP retry after TC) out
    /// (RFC 7766 §6.2.3). False when every connection is answering a query.
    /// </summary>
    private bool CloseIdlest()
    {
        while (true)
        {
            TcpSession? idlest = null;
            var since = long.MaxValue;
            foreach (var session in _sessions.Keys)
            {
                var idle = Volatile.Read(ref session.IdleSince);
                if (idle != 0 && idle < since) (idlest, since) = (session, idle);
            }
            if (idlest is null) return false;
            // Claimed by this call only if it is still idle since then (not answering, not claimed before).
            if (Interlocked.CompareExchange(ref idlest.IdleSince, 0, since) != since) continue;
            try
            {
                idlest.Close.Cancel();
            }
            catch (ObjectDisposedException)
            {
                continue; // it ended meanwhile
            }
            return true;
        }
    }

    /// <summary>
    /// One TCP connection. Queries are read one after another, and each is answered as soon as its
    /// answer is ready (RFC 7766 §6.2.1.1, §7: out of order is allowed, the id matches them up): an
    /// answer from our zones or the cache goes out at once, a forwarded one when its upstream
    /// replies, while the queries behind it are read and answered. At most
    /// <see cref="DnsTransportOptions.MaxTcpQueriesInFlight"/> forwarded queries are outstanding;
    /// beyond that the next is not read until one is answered (the client's sends back up in
    /// TCP). Responses leave whole, one at a time (<see cref="TcpSession.SendAsync"/>). When the
    /// reader stops (end of stream, idle, closed for room) the outstanding answers are still sent
    /// before the connection closes: a client may half-close after its last query.
    /// </summary>
    private async Task ServeTcpAsync(Socket connection, CancellationToken cancellationToken)
    {
        var session = new TcpSession(connection, _options.MaxTcpQueriesInFlight, _options.TcpIdleTimeout);
        _sessions[session] = 0;
        try
        {
            await ReadQueriesAsync(connection, session, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Idle, reset or shutting down: no more queries are read.
        }
        finally
        {
            await session.DrainAsync().ConfigureAwait(false);
            connection.Dispose();
            _sessions.TryRemove(session, out _);
            session.Dispose();
            Interlocked.Decrement(ref _connections);
        }
    }

    private async Task ReadQueriesAsync(Socket connection, TcpSession session, CancellationToken cancellationToken)
    {
        var buffer = new byte[2 + 65535];
        var response = new byte[2 + 65535];
        connection.NoDelay = true;
        var client = connection.RemoteEndPoint?.Serialize();
        while (true)
        {
            using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Close.Token);
            idle.CancelAfter(_options.TcpIdleTimeout);
            session.Waiting();
            if (!await ReadExactlyAsync(connection, buffer.AsMemory(0, 2), idle.Token).ConfigureAwait(false)) return;
            var length = BinaryPrimitives.ReadUInt16BigEndian(buffer);
            if (!await ReadExactlyAsync(connection, buffer.AsMemory(2, length), idle.Token).ConfigureAwait(false)) return;
            // Answering only once the whole query is in: a client that sends part of one and stalls
            // is still waited on, not answered, and stays first to close for room (else stalled
            // connections at the limit would keep every new client out).
            session.Answering();
            var written = _handler.Handle(buffer.AsSpan(2, length), response.AsSpan(2), tcp: true, client is null ? default : client.Buffer.Span[..client.Size]);
            if (written == QueryHandler.Forward)
            {
                await session.Slots.WaitAsync(cancellationToken).ConfigureAwait(false);
                session.Started();
                _ = AnswerLaterAsync(session, buffer.AsSpan(2, length).ToArray(), cancellationToken);
                continue;
            }
            if (written <= 0)
            {
                // A response sent to us (QR set) is ignored, as over UDP (RFC 1035 §7.3); a frame
                // shorter than a header is no DNS message at all, and closes the connection.
                if (length >= Wire.QueryParser.HeaderLength) continue;
                session.Abort();
                return;
            }
            BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)written);
            if (!await session.SendAsync(response.AsMemory(0, 2 + written), cancellationToken).ConfigureAwait(false)) return;
        }
    }

    /// <summary>A forwarded query of a TCP connection: answered with the upstreams' reply (<see cref="QueryHandler.ResolveAsync"/>) whenever it comes.</summary>
    private async Task AnswerLaterAsync(TcpSession session, byte[] query, CancellationToken cancellationToken)
    {
        var response = ArrayPool<byte>.Shared.Rent(2 + 65535);
        try
        {
            var written = await _handler.ResolveAsync(query, response.AsMemory(2, 65535), tcp: true, cancellationToken).ConfigureAwait(false);
            if (written <= 0)
            {
                session.Abort();
                return;
            }
            BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)written);
            await session.SendAsync(response.AsMemory(0, 2 + written), cancellationToken).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Shutting down: no answer.
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(response);
            session.Finished();
        }
    }

    private static async ValueTask<bool> ReadExactlyAsync(Socket socket, Memory<byte> destination, CancellationToken cancellationToken)
    {
        var read = 0;
        while (read < destination.Length)
        {
            var n = await socket.ReceiveAsync(destination[read..], SocketFlags.None, cancellationToken).ConfigureAwait(false);
            if (n == 0) return false;
            read += n;
        }
        return true;
    }

    private int _disposed;

    /// <summary>Stops serving and closes the sockets; a second call does nothing.</summary>
    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        await _stop.CancelAsync().ConfigureAwait(false);
        _udp.Dispose();
        _tcp.Dispose();
        try
        {
            await Task.WhenAll(_loops).ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
        }
        _stop.Dispose();
    }
}
