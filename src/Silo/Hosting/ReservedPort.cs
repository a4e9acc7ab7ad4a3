using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// The port of Orleans' silo-to-silo listener when Cluster:SiloPort is 0: a socket bound to a free
/// port with SO_REUSEADDR and never listening, held while the silo runs. Orleans' listener (which
/// .NET binds with SO_REUSEADDR too) binds beside it; nothing else can take the port first, since
/// other binds are refused and the kernel never picks a port bound this way for an outgoing
/// connection. A port found free and closed again could be taken by any outgoing connection on
/// the machine before Orleans bound it, and the silo then failed to start.
/// </summary>
internal sealed class ReservedPort : IDisposable
{
    private readonly Socket _socket;

    private ReservedPort(Socket socket) => _socket = socket;

    public int Port => ((IPEndPoint)_socket.LocalEndPoint!).Port;

    /// <summary>A port free on every address of <paramref name="family"/>.</summary>
    public static ReservedPort Take(AddressFamily family)
    {
        var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            if (family == AddressFamily.InterNetworkV6)
            {
                socket.DualMode = false;
            }
            socket.Bind(new IPEndPoint(family == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0));
            return new ReservedPort(socket);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public void Dispose() => _socket.Dispose();
}
