using System.Net;
using System.Net.Sockets;
using System.Text;
using ControlPlane.Dataplane.Linux.Netns;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>How one probe ended.</summary>
internal enum ProbeResult { Answered, Refused, TimedOut, Unreachable }

/// <summary>
/// Real sockets inside workload namespaces: a socket belongs to the namespace it was created in,
/// so it is created on a thread inside the namespace and then used from anywhere. Servers answer
/// every TCP connection and UDP datagram with "name peer-address" and close.
/// </summary>
internal sealed class PodSockets : IDisposable
{
    private readonly List<Socket> _sockets = [];
    private readonly Dictionary<string, List<Socket>> _byName = [];
    private readonly CancellationTokenSource _stop = new();

    public static Socket Create(string netns, AddressFamily family, SocketType type, ProtocolType protocol)
    {
        using var ns = NetworkNamespace.Enter(netns);
        return ns.Invoke(() => new Socket(family, type, protocol));
    }

    /// <summary>Serves TCP and UDP on <paramref name="port"/> in the namespace, answering with <paramref name="name"/>.</summary>
    public void Serve(string netns, string name, int port, AddressFamily family = AddressFamily.InterNetwork)
    {
        var any = family == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
        var tcp = Create(netns, family, SocketType.Stream, ProtocolType.Tcp);
        if (family == AddressFamily.InterNetworkV6) tcp.DualMode = false; // beside an IPv4 server on the same port
        tcp.Bind(new IPEndPoint(any, port));
        tcp.Listen(512);
        var udp = Create(netns, family, SocketType.Dgram, ProtocolType.Udp);
        if (family == AddressFamily.InterNetworkV6) udp.DualMode = false;
        udp.Bind(new IPEndPoint(any, port));
        lock (_sockets)
        {
            _sockets.AddRange([tcp, udp]);
            if (!_byName.TryGetValue(name, out var named)) _byName[name] = named = [];
            named.AddRange([tcp, udp]);
        }
        _ = Task.Run(async () =>
        {
            while (!_stop.IsCancellationRequested)
            {
                Socket client;
                try { client = await tcp.AcceptAsync(_stop.Token); }
                catch (Exception) { return; }
                var peer = ((IPEndPoint)client.RemoteEndPoint!).Address;
                try { await client.SendAsync(Encoding.ASCII.GetBytes($"{name} {peer}")); client.Shutdown(SocketShutdown.Both); }
                catch (SocketException) { }
                client.Dispose();
            }
        });
        _ = Task.Run(async () =>
        {
            var buffer = new byte[512];
            EndPoint from = new IPEndPoint(any, 0);
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    var received = await udp.ReceiveFromAsync(buffer, from, _stop.Token);
                    var peer = (IPEndPoint)received.RemoteEndPoint;
                    await udp.SendToAsync(Encoding.ASCII.GetBytes($"{name} {peer.Address}"), peer);
                }
                catch (Exception) { return; }
            }
        });
    }

    /// <summary>Closes the servers named <paramref name="name"/> (their namespace can then go).</summary>
    public void Stop(string name)
    {
        lock (_sockets)
        {
            if (!_byName.Remove(name, out var named)) return;
            foreach (var socket in named)
            {
                _sockets.Remove(socket);
                socket.Dispose();
            }
        }
    }

    /// <summary>
    /// A probe on its own clock. A refusal comes back with the first SYN or datagram, so well
    /// within a second, before the kernel's first SYN retransmission; timing probes one by one
    /// keeps a loaded machine's scheduling out of the figure.
    /// </summary>
    public static async Task<(ProbeResult Result, TimeSpan Took)> TimedAsync(Func<Task<(ProbeResult Result, string Answer)>> probe)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var (result, _) = await probe();
        return (result, clock.Elapsed);
    }

    /// <summary>One TCP connection from the namespace: the server's answer, or how it failed.</summary>
    public static async Task<(ProbeResult Result, string Answer)> TcpAsync(string netns, string address, int port, TimeSpan timeout)
    {
        var ip = IPAddress.Parse(address);
        using var socket = Create(netns, ip.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        using var deadline = new CancellationTokenSource(timeout);
        try
        {
            await socket.ConnectAsync(new IPEndPoint(ip, port), deadline.Token);
            var buffer = new byte[256];
            var total = 0;
            int read;
            while ((read = await socket.ReceiveAsync(buffer.AsMemory(total), deadline.Token)) > 0) total += read;
            return (ProbeResult.Answered, Encoding.ASCII.GetString(buffer, 0, total));
        }
        catch (OperationCanceledException)
        {
            return (ProbeResult.TimedOut, "");
        }
        catch (SocketException e)
        {
            return (Classify(e), "");
        }
    }

    /// <summary>A UDP request from a socket of its own (a new flow each time), or on <paramref name="socket"/> (the same flow).</summary>
    public static async Task<(ProbeResult Result, string Answer)> UdpAsync(string netns, string address, int port, TimeSpan timeout, Socket? socket = null)
    {
        var ip = IPAddress.Parse(address);
        var own = socket is null;
        socket ??= Create(netns, ip.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
        try
        {
            using var deadline = new CancellationTokenSource(timeout);
            socket.Connect(new IPEndPoint(ip, port));
            await socket.SendAsync("?"u8.ToArray(), deadline.Token);
            var buffer = new byte[256];
            var read = await socket.ReceiveAsync(buffer, deadline.Token);
            return (ProbeResult.Answered, Encoding.ASCII.GetString(buffer, 0, read));
        }
        catch (OperationCanceledException)
        {
            return (ProbeResult.TimedOut, "");
        }
        catch (SocketException e)
        {
            return (Classify(e), "");
        }
        finally
        {
            if (own) socket.Dispose();
        }
    }

    private static ProbeResult Classify(SocketException e) => e.SocketErrorCode switch
    {
        SocketError.ConnectionRefused or SocketError.ConnectionReset => ProbeResult.Refused,
        SocketError.HostUnreachable or SocketError.NetworkUnreachable => ProbeResult.Unreachable,
        SocketError.TimedOut => ProbeResult.TimedOut,
        _ => throw e,
    };

    public void Dispose()
    {
        _stop.Cancel();
        lock (_sockets)
        {
            foreach (var socket in _sockets) socket.Dispose();
        }
    }
}
