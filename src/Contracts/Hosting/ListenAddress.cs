using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// An address a program listens on could not be bound: taken by another process, below 1024
/// without the privilege, or not an address of this host. Its message is one line for the
/// operator, naming the setting; the programs print it and exit 1.
/// </summary>
public sealed class ListenAddressException(string message, SocketException inner) : IOException(message, inner);

/// <summary>Binding listen addresses with errors an operator can act on.</summary>
public static class ListenAddress
{
    /// <summary>
    /// Parses "address:port" ("[v6]:port" for IPv6) whose port is written out: .NET's parser
    /// takes a bare address as port 0, which a listener would turn into a random port.
    /// </summary>
    public static bool TryParse(string text, out IPEndPoint endpoint)
    {
        var portAt = text.LastIndexOf(':');
        var written = portAt > 0 && portAt < text.Length - 1 && (text[0] != '[' || text[portAt - 1] == ']') && (text[0] == '[' || text.IndexOf(':') == portAt);
        endpoint = null!;
        return written && IPEndPoint.TryParse(text, out endpoint!);
    }

    /// <summary>
    /// Binds and at once releases the address (TCP, and UDP too when <paramref name="udp"/>), so
    /// that a program refuses to start before it has started anything else. Port 0 always binds.
    /// </summary>
    public static void RequireFree(string setting, IPEndPoint endpoint, bool udp = false)
    {
        if (endpoint.Port == 0) return;
        if (udp) Bind(setting, endpoint, SocketType.Dgram, ProtocolType.Udp).Dispose();
        Bind(setting, endpoint, SocketType.Stream, ProtocolType.Tcp).Dispose();
    }

    /// <summary>A socket bound to <paramref name="endpoint"/> ("[::]" serves IPv4 too), or a <see cref="ListenAddressException"/>.</summary>
    private static Socket Bind(string setting, IPEndPoint endpoint, SocketType type, ProtocolType protocol)
    {
        var socket = new Socket(endpoint.AddressFamily, type, protocol);
        try
        {
            if (endpoint.Address.Equals(IPAddress.IPv6Any)) socket.DualMode = true;
            // As Kestrel does: a listener may bind while old connections of the port linger.
            if (type == SocketType.Stream) socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(endpoint);
            return socket;
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw Failed(setting, endpoint, protocol, e);
        }
    }

    /// <summary>
    /// Makes <paramref name="path"/> free for a unix socket listener: a socket file left by a
    /// process that is gone is removed; one that a live process still serves (the same program
    /// started twice) is a <see cref="ListenAddressException"/>, so the second program stops
    /// instead of taking the path over (and the first, on its way out, removing it from under it).
    /// </summary>
    public static void ClaimUnixSocket(string setting, string path)
    {
        if (!File.Exists(path)) return;
        using (var probe = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified))
        {
            try
            {
                probe.Connect(new UnixDomainSocketEndPoint(path));
                throw new ListenAddressException($"{setting} {path}: another process serves this socket (the program already running?); stop it or choose another {setting}",
                    new SocketException((int)SocketError.AddressAlreadyInUse));
            }
            catch (SocketException e) when (e.SocketErrorCode == SocketError.ConnectionRefused)
            {
                // Nobody listens: a file left behind.
            }
        }
        File.Delete(path);
    }

    public static ListenAddressException Failed(string setting, IPEndPoint endpoint, ProtocolType protocolType, SocketException e)
    {
        var protocol = protocolType == ProtocolType.Udp ? "UDP" : "TCP";
        return new(Describe(setting, endpoint, protocol, e.SocketErrorCode), e);
    }

    private static string Describe(string setting, IPEndPoint endpoint, string protocol, SocketError error) => error switch
    {
        SocketError.AddressAlreadyInUse => $"{setting} {endpoint}: {protocol} address already in use by another process; stop it or choose another {setting}",
        SocketError.AccessDenied => $"{setting} {endpoint}: binding a {protocol} port below 1024 needs root or CAP_NET_BIND_SERVICE; choose another {setting}",
        SocketError.AddressNotAvailable => $"{setting} {endpoint}: no interface of this host has that address",
        _ => $"{setting} {endpoint}: cannot bind {protocol} ({error})",
    };
}
