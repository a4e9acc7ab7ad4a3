using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Tests.Shared;

/// <summary>Ports for the servers tests start.</summary>
internal static class Ports
{
    /// <summary>A TCP port free on <paramref name="address"/> (loopback by default) right now: the kernel's pick.</summary>
    public static int Free(IPAddress? address = null)
    {
        using var listener = new TcpListener(address ?? IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    /// <summary>
    /// The first port from <paramref name="first"/> up to <paramref name="last"/> that is free for both
    /// TCP and UDP on 127.0.0.1 (a DNS server needs both, on a port fixed before it starts).
    /// </summary>
    public static int FreeTcpAndUdp(int first, int last)
    {
        for (var port = first; port <= last; port++)
        {
            try
            {
                using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
                udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
                var tcp = new TcpListener(IPAddress.Loopback, port);
                tcp.Start();
                tcp.Stop();
                return port;
            }
            catch (SocketException)
            {
            }
        }
        throw new InvalidOperationException($"no port free for TCP and UDP from {first} to {last}");
    }
}
