namespace ControlPlane.Dns.Forwarding;

/// <summary>Forwarding of names outside our zones (configuration section "Dns"). Off unless upstreams are set.</summary>
public sealed class ForwarderOptions
{
    /// <summary>Upstream servers, address:port, tried in turn. Empty: such names are REFUSED.</summary>
    public List<string> Forwarders { get; set; } = [];

    /// <summary>Most answers kept in the cache; the oldest go first.</summary>
    public int CacheSize { get; set; } = 10_000;

    /// <summary>How long one upstream gets before the next is tried.</summary>
    public TimeSpan ForwardTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Longest time any forwarded answer is cached, whatever its TTL; also the largest TTL relayed
    /// to a client, which must not keep an answer longer than this server does.
    /// </summary>
    public TimeSpan MaxCacheTtl { get; set; } = TimeSpan.FromMinutes(5);
}
