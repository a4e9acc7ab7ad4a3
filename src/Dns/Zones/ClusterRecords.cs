using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.Services;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// Synthesises the records of the Kubernetes DNS-Based Service Discovery specification (schema
/// 1.1.0) from services, their endpoint sets and the networks. Choices where the specification
/// leaves one:
/// <list type="bullet">
/// <item>headless endpoints without a hostname get one derived from their address (dots or
/// colons replaced by dashes), used for their SRV targets and A/AAAA records;</item>
/// <item>a headless endpoint's hostname record exists only when its hostname is set and its
/// subdomain names the service, or when derived;</item>
/// <item>a headless service answers only the endpoint addresses of its IP families
/// (spec.ip_families; all of them when the list is empty);</item>
/// <item>headless SRV records carry the endpoint's port (a named target port resolved per endpoint);
/// ClusterIP SRV records carry the service port;</item>
/// <item>reverse zones cover exactly the service ranges and the networks' CIDRs (plus any zone
/// configured in full): PTR records exist for ClusterIPs and headless endpoints; an address outside
/// every claimed zone gets no PTR (it is counted, so the feed can say so).</item>
/// </list>
/// Pod records are not stored here: <see cref="PodIndex"/> answers them at query time. The
/// ClusterSet zone's records come from <see cref="ClusterSetRecords"/>, after these.
/// </summary>
public static class ClusterRecords
{
    public const string SchemaVersion = "1.1.0";

    /// <param name="imports">ServiceImports, for the ClusterSet zone (ignored when
    /// <see cref="ClusterZoneOptions.ClusterSetZone"/> is empty).</param>
    public static List<ResourceRecord> Build(ClusterZoneOptions options, uint serial, IEnumerable<Service> services,
        IReadOnlyDictionary<string, ServiceEndpoints> endpointSets, IEnumerable<ServiceImport> imports, IEnumerable<string> networkCidrs,
        out int unclaimedAddresses)
    {
        var zone = DnsName.Canonical(options.Zone);
        var clusterSet = DnsName.Canonical(options.ClusterSetZone);
        var ttl = options.Ttl;
        var records = new List<ResourceRecord>();
        // One server answers every zone: the ClusterSet zone and the reverse zones share the cluster
        // zone's SOA fields and its one nameserver name, ns.dns.<zone>, which has an address below
        // (an NS target must resolve). A name per zone (ns.dns.clusterset.local) would be one more
        // name for the same server, and one in a zone whose schema KEP-1645 defines.
        var soa = $"ns.dns.{zone}. hostmaster.{zone}. {serial} 7200 1800 86400 {options.NegativeTtl}";
        var reverse = ReverseApexes(options, networkCidrs);
        foreach (var apex in options.ForwardZones.Select(DnsName.Canonical).Concat(reverse.Order(StringComparer.Ordinal)))
        {
            records.Add(new ResourceRecord(apex, DnsType.SOA, ttl, soa));
            records.Add(new ResourceRecord(apex, DnsType.NS, ttl, $"ns.dns.{zone}."));
        }
        if (options.NameserverAddress is { Length: > 0 } nameserver)
        {
            records.Add(new ResourceRecord($"ns.dns.{zone}", Family(IPAddress.Parse(nameserver)), ttl, nameserver));
        }
        records.Add(new ResourceRecord($"dns-version.{zone}", DnsType.TXT, ttl, $"\"{SchemaVersion}\""));

        var unclaimed = 0;
        var pointed = new HashSet<string>(StringComparer.Ordinal);
        void Pointer(IPAddress address, string target)
        {
            var name = ReverseZones.Name(address);
            if (Claimed(reverse, name)) records.Add(new ResourceRecord(name, DnsType.PTR, ttl, target));
            else unclaimed++;
            pointed.Add(name);
        }

        foreach (var service in services)
        {
            var name = $"{service.Metadata.Name}.{service.Metadata.Namespace}.svc.{zone}";
            switch (service.Spec.Type)
            {
                case ServiceType.ExternalName:
                    records.Add(new ResourceRecord(name, DnsType.CNAME, ttl, DnsName.Canonical(service.Spec.ExternalName) + "."));
                    break;
                case ServiceType.Headless:
                    endpointSets.TryGetValue($"{service.Metadata.Namespace}/{service.Metadata.Name}", out var set);
                    AddHeadless(records, service, set, name, ttl, Pointer);
                    break;
                default:
                    foreach (var ip in service.Status.ClusterIps)
                    {
                        var address = IPAddress.Parse(ip);
                        records.Add(new ResourceRecord(name, Family(address), ttl, ip));
                        Pointer(address, name + ".");
                    }
                    if (service.Status.ClusterIps.Count > 0)
                    {
                        foreach (var port in service.Spec.Ports.Where(p => p.Name.Length > 0))
                        {
                            records.Add(new ResourceRecord(SrvName(port, name), DnsType.SRV, ttl, $"0 100 {port.Port} {name}."));
                        }
                    }
                    break;
            }
        }
        if (clusterSet.Length > 0)
        {
            // After the cluster zone's: an address keeps the PTR it has (the Multicluster DNS specification, §2.3.3 and §2.4.3 Limitations).
            ClusterSetRecords.Add(records, clusterSet, ttl, imports, (address, target, counted) =>
            {
                var name = ReverseZones.Name(address);
                if (!Claimed(reverse, name))
                {
                    if (counted) unclaimed++;
                }
                else if (pointed.Add(name))
                {
                    records.Add(new ResourceRecord(name, DnsType.PTR, ttl, target));
                }
            });
        }
        unclaimedAddresses = unclaimed;
        return records;
    }

    /// <summary>The reverse zones claimed: the service ranges', the networks' and the configured ones.</summary>
    public static HashSet<string> ReverseApexes(ClusterZoneOptions options, IEnumerable<string> networkCidrs)
    {
        var apexes = new HashSet<string>(options.ReverseZones.Select(DnsName.Canonical), StringComparer.Ordinal);
        foreach (var cidr in options.EffectiveServiceRanges.Concat(networkCidrs))
        {
            if (ReverseZones.TryParseRange(cidr, out var range)) apexes.UnionWith(ReverseZones.Apexes(range));
        }
        return apexes;
    }

    private static bool Claimed(HashSet<string> apexes, string name)
    {
        for (var suffix = name; ; suffix = suffix[(suffix.IndexOf('.') + 1)..])
        {
            if (apexes.Contains(suffix)) return true;
            if (!suffix.Contains('.')) return false;
        }
    }

    private static void AddHeadless(List<ResourceRecord> records, Service service, ServiceEndpoints? set, string name, uint ttl,
        Action<IPAddress, string> pointer)
    {
        if (set is null) return;
        foreach (var endpoint in set.Endpoints)
        {
            if (!ServiceEndpointRules.Serves(service.Spec, endpoint)) continue;
            // Only the service's families: an IPv4 service answers no AAAA, whatever its endpoints hold.
            var addresses = endpoint.Ips.Where(ip => ServiceEndpointRules.OfFamilies(service.Spec, ip)).Select(IPAddress.Parse).ToList();
            if (addresses.Count == 0) continue;
            var hostname = Hostname(endpoint, service.Metadata.Name, addresses[0]);
            foreach (var address in addresses)
            {
                var ip = address.ToString();
                records.Add(new ResourceRecord(name, Family(address), ttl, ip));
                records.Add(new ResourceRecord($"{hostname}.{name}", Family(address), ttl, ip));
                pointer(address, $"{hostname}.{name}.");
            }
            foreach (var port in service.Spec.Ports.Where(p => p.Name.Length > 0))
            {
                if (ServicePorts.Target(port, endpoint) is not { } target) continue;
                records.Add(new ResourceRecord(SrvName(port, name), DnsType.SRV, ttl, $"0 100 {target} {hostname}.{name}."));
            }
        }
    }

    /// <summary>
    /// A headless endpoint's hostname: its own when set and its subdomain names the service, else
    /// derived from its first address.
    /// </summary>
    internal static string Hostname(EndpointAddress endpoint, string service, IPAddress first) =>
        endpoint.Hostname.Length > 0 && endpoint.Subdomain == service ? endpoint.Hostname : Dashed(first);

    /// <summary>
    /// &lt;namespace&gt;.svc.&lt;zone&gt;: a namespace's name exists (NODATA) while the namespace does,
    /// with or without services, as with CoreDNS; a name under no namespace is NXDOMAIN.
    /// </summary>
    public static string NamespaceName(ClusterZoneOptions options, string ns) => $"{ns}.svc.{DnsName.Canonical(options.Zone)}";

    /// <summary>_&lt;port&gt;._&lt;proto&gt;.&lt;name&gt;, the owner of a named port's SRV records.</summary>
    internal static string SrvName(ServicePort port, string name) => $"_{port.Name}._{ProtocolLabel(port.Protocol)}.{name}";

    private static string ProtocolLabel(Protocol protocol) => protocol switch
    {
        Protocol.Udp => "udp",
        Protocol.Sctp => "sctp",
        _ => "tcp",
    };

    internal static DnsType Family(IPAddress address) =>
        address.AddressFamily == AddressFamily.InterNetwork ? DnsType.A : DnsType.AAAA;

    /// <summary>The address with dashes for its dots or colons: the form pod records use.</summary>
    public static string Dashed(IPAddress address) => address.ToString().Replace('.', '-').Replace(':', '-');
}
