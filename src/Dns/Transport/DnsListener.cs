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
/// messages, several queries per connection answered in order, a bound on connections and an
/// idle timeout, so a flood cannot exhaust memory.
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
            // Blocking receive/send on dedicated threads: no async hand-off per datagram.
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            new Thread(() => { UdpLoop(_stop.Token); done.SetResult(); }) { IsBackground = true, Name = $"dns-udp-{i}" }.Start();
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
                await _udp.SendToAsync(response.AsMemory(0, length), SocketFlags.None, client, _stop.Token).ConfigureAwait(false);
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

    /// <summary>A TCP connection: since when it has waited for its next query (0 while it answers one), and how to close it.</summary>
    private sealed class TcpSession : IDisposable
    {
        public readonly CancellationTokenSource Close = new();
        public long IdleSince;

        public void Dispose() => Close.Dispose();
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

    private async Task ServeTcpAsync(Socket connection, CancellationToken cancellationToken)
    {
        var buffer = new byte[2 + 65535];
        var response = new byte[2 + 65535];
        var session = new TcpSession();
        _sessions[session] = 0;
        try
        {
            using (connection)
            {
                connection.NoDelay = true;
                var client = connection.RemoteEndPoint?.Serialize();
                while (true)
                {
                    using var idle = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken, session.Close.Token);
                    idle.CancelAfter(_options.TcpIdleTimeout);
                    Volatile.Write(ref session.IdleSince, System.Diagnostics.Stopwatch.GetTimestamp());
                    if (!await ReadExactlyAsync(connection, buffer.AsMemory(0, 2), idle.Token).ConfigureAwait(false)) return;
                    // Answering now: not to be closed for room (unless already claimed, then it ends at its next read).
                    Interlocked.Exchange(ref session.IdleSince, 0);
                    var length = BinaryPrimitives.ReadUInt16BigEndian(buffer);
                    if (!await ReadExactlyAsync(connection, buffer.AsMemory(2, length), idle.Token).ConfigureAwait(false)) return;
                    var written = _handler.Handle(buffer.AsSpan(2, length), response.AsSpan(2), tcp: true, client is null ? default : client.Buffer.Span[..client.Size]);
                    if (written == QueryHandler.Forward)
                    {
                        written = await _handler.ResolveAsync(buffer.AsMemory(2, length), response.AsMemory(2), tcp: true, cancellationToken).ConfigureAwait(false);
                    }
                    if (written <= 0) return;
                    BinaryPrimitives.WriteUInt16BigEndian(response, (ushort)written);
                    await connection.SendAsync(response.AsMemory(0, 2 + written), SocketFlags.None, cancellationToken).ConfigureAwait(false);
                }
            }
        }
        catch (Exception e) when (e is OperationCanceledException or SocketException or ObjectDisposedException)
        {
            // Idle, reset or shutting down: the connection simply ends.
        }
        finally
        {
            _sessions.TryRemove(session, out _);
            session.Dispose();
            Interlocked.Decrement(ref _connections);
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
