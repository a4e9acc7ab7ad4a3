namespace ControlPlane.Dns.Transport;

/// <summary>Where and how the server listens (configuration section "Dns").</summary>
public sealed class DnsTransportOptions
{
    /// <summary>address:port for both UDP and TCP; port 0 picks a free one.</summary>
    public string Listen { get; set; } = "127.0.0.1:53";

    /// <summary>Concurrent UDP receive loops; 0 means one per CPU.</summary>
    public int Threads { get; set; }

    /// <summary>Largest UDP response, whatever a client's EDNS buffer size says.</summary>
    public int MaxUdpPayload { get; set; } = 1232;

    /// <summary>TCP connections served at once; more are closed on accept.</summary>
    public int MaxTcpConnections { get; set; } = 256;

    /// <summary>A TCP connection idle for this long is closed (RFC 7766 suggests seconds).</summary>
    public TimeSpan TcpIdleTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
