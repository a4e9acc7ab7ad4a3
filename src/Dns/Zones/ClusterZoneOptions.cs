namespace ControlPlane.Dns.Zones;

/// <summary>What the cluster zone looks like (configuration section "Dns").</summary>
public sealed class ClusterZoneOptions
{
    /// <summary>The cluster domain.</summary>
    public string Zone { get; set; } = "cluster.local";

    /// <summary>Reverse zones answered authoritatively (PTR for service and endpoint addresses).</summary>
    public List<string> ReverseZones { get; set; } = ["in-addr.arpa", "ip6.arpa"];

    /// <summary>TTL of positive answers, in seconds.</summary>
    public uint Ttl { get; set; } = 30;

    /// <summary>SOA MINIMUM: how long resolvers cache NXDOMAIN and NODATA (RFC 2308).</summary>
    public uint NegativeTtl { get; set; } = 5;

    /// <summary>Address published for ns.dns.&lt;zone&gt;, if any.</summary>
    public string NameserverAddress { get; set; } = string.Empty;
}
