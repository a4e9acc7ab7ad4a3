using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// Ports for what the tests start, from 25000-25999 (the range this suite may use on a shared
/// machine) unless DNS_TEST_PORTS names another ("7800-7899"): each call hands out the next one
/// that is free for both TCP and UDP on loopback.
/// </summary>
internal static class TestPorts
{
    private static readonly (int First, int Count) Range = FromEnvironment() ?? (25000, 1000);
    private static readonly int First = Range.First;
    private static readonly int Count = Range.Count;
    private static int _next = Random.Shared.Next(Count);

    private static (int, int)? FromEnvironment()
    {
        var text = Environment.GetEnvironmentVariable("DNS_TEST_PORTS");
        if (string.IsNullOrEmpty(text)) return null;
        var parts = text.Split('-');
        if (parts.Length != 2 || !int.TryParse(parts[0], out var first) || !int.TryParse(parts[1], out var last) || last < first)
        {
            throw new FormatException($"DNS_TEST_PORTS='{text}' is not FIRST-LAST");
        }
        return (first, last - first + 1);
    }

    public static int Next()
    {
        for (var i = 0; i < Count; i++)
        {
            var port = First + (int)((uint)Interlocked.Increment(ref _next) % Count);
            if (Free(port)) return port;
        }
        throw new InvalidOperationException($"no free port in {First}-{First + Count - 1}");
    }

    /// <summary>"127.0.0.1:port" with a fresh port.</summary>
    public static string Loopback() => $"127.0.0.1:{Next()}";

    private static bool Free(int port)
    {
        try
        {
            using var tcp = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
            tcp.Bind(new IPEndPoint(IPAddress.Loopback, port));
            using var udp = new Socket(AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
            udp.Bind(new IPEndPoint(IPAddress.Loopback, port));
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }
}
