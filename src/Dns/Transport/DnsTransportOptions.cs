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

    /// <summary>
    /// Forwarded queries one TCP connection may have outstanding (RFC 7766 §6.2.1.1: pipelined
    /// queries are answered as they are ready); past it the connection's next query is read once
    /// one of them is answered.
    /// </summary>
    public int MaxTcpQueriesInFlight { get; set; } = 16;

    /// <summary>
    /// A TCP connection idle for this long is closed (RFC 7766 suggests seconds); so is one whose
    /// client does not take a response within it.
    /// </summary>
    public TimeSpan TcpIdleTimeout { get; set; } = TimeSpan.FromSeconds(10);
}
