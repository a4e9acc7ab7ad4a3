namespace ControlPlane.Dns.Zones;

/// <summary>What the cluster zone looks like (configuration section "Dns").</summary>
public sealed class ClusterZoneOptions
{
    /// <summary>The silo's default service range (ControlPlane:ServiceIpv4Cidr).</summary>
    public const string DefaultServiceRange = "10.96.0.0/16";

    /// <summary>The cluster domain.</summary>
    public string Zone { get; set; } = "cluster.local";

    /// <summary>
    /// The ClusterSet domain, answered from ServiceImports (the Multi-Cluster Services API's
    /// <c>clusterset.local</c>). Empty: not served, and ServiceImports are not watched.
    /// </summary>
    public string ClusterSetZone { get; set; } = "clusterset.local";

    /// <summary>
    /// The control plane's service ranges (ControlPlane:ServiceIpv4Cidr and ServiceIpv6Cidr):
    /// their reverse zones are answered authoritatively, like the networks' CIDRs. Unset:
    /// <see cref="DefaultServiceRange"/>. A DNS server embedded in the silo takes the silo's.
    /// </summary>
    public string[]? ServiceRanges { get; set; }

    /// <summary>
    /// Further reverse zones answered authoritatively in full ("in-addr.arpa" claims every IPv4
    /// reverse name). Reverse names in no claimed zone are forwarded, or REFUSED without forwarders.
    /// </summary>
    public List<string> ReverseZones { get; set; } = [];

    /// <summary>Pod records (a-b-c-d.&lt;namespace&gt;.pod.&lt;zone&gt;): Verified (the default, see <see cref="PodRecordMode"/>), Insecure or Disabled.</summary>
    public PodRecordMode PodRecords { get; set; } = PodRecordMode.Verified;

    /// <summary>TTL of positive answers, in seconds.</summary>
    public uint Ttl { get; set; } = 30;

    /// <summary>SOA MINIMUM: how long resolvers cache NXDOMAIN and NODATA (RFC 2308).</summary>
    public uint NegativeTtl { get; set; } = 5;

    /// <summary>
    /// Address published for ns.dns.&lt;<see cref="Zone"/>&gt; (the cluster zone), the one NS
    /// target and SOA MNAME of every zone the cluster records make: the cluster zone, the
    /// ClusterSet zone and the reverse zones (so no NS is lame). Empty: the address Dns:Listen
    /// binds (see DnsHosting).
    /// </summary>
    public string NameserverAddress { get; set; } = string.Empty;

    /// <summary>The forward zones served: the cluster zone, and the ClusterSet zone unless it is off.</summary>
    public IReadOnlyList<string> ForwardZones => ClusterSetZone.Length > 0 ? [Zone, ClusterSetZone] : [Zone];

    /// <summary>The service ranges in effect.</summary>
    public IReadOnlyList<string> EffectiveServiceRanges => ServiceRanges ?? [DefaultServiceRange];
}
