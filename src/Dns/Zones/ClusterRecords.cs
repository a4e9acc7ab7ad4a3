using System.Net;
using System.Net.Sockets;
using System.Text;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// Synthesises the records of the Kubernetes DNS-Based Service Discovery specification (schema
/// 1.1.0) from services and their endpoint sets. Choices where the specification leaves one:
/// <list type="bullet">
/// <item>headless endpoints without a hostname get one derived from their address (dots or
/// colons replaced by dashes), used for their SRV targets and A/AAAA records;</item>
/// <item>a headless endpoint's hostname record exists only when its hostname is set and its
/// subdomain names the service, or when derived;</item>
/// <item>headless SRV records carry the endpoint's port (a named target port resolved per endpoint);
/// ClusterIP SRV records carry the service port;</item>
/// <item>reverse zones are configured (default in-addr.arpa and ip6.arpa): PTR records exist for
/// ClusterIPs and for headless endpoints, other reverse names are NXDOMAIN.</item>
/// </list>
/// </summary>
public static class ClusterRecords
{
    public const string SchemaVersion = "1.1.0";

    public static List<ResourceRecord> Build(ClusterZoneOptions options, uint serial,
        IEnumerable<Service> services, IReadOnlyDictionary<string, ServiceEndpoints> endpointSets)
    {
        var zone = DnsName.Canonical(options.Zone);
        var ttl = options.Ttl;
        var records = new List<ResourceRecord>();
        var soa = $"ns.dns.{zone}. hostmaster.{zone}. {serial} 7200 1800 86400 {options.NegativeTtl}";
        foreach (var apex in options.ReverseZones.Select(DnsName.Canonical).Prepend(zone))
        {
            records.Add(new ResourceRecord(apex, DnsType.SOA, ttl, soa));
            records.Add(new ResourceRecord(apex, DnsType.NS, ttl, $"ns.dns.{zone}."));
        }
        if (options.NameserverAddress is { Length: > 0 } nameserver)
        {
            records.Add(new ResourceRecord($"ns.dns.{zone}", Family(nameserver), ttl, nameserver));
        }
        records.Add(new ResourceRecord($"dns-version.{zone}", DnsType.TXT, ttl, $"\"{SchemaVersion}\""));

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
                    AddHeadless(records, service, set, name, ttl);
                    break;
                default:
                    foreach (var ip in service.Status.ClusterIps)
                    {
                        records.Add(new ResourceRecord(name, Family(ip), ttl, ip));
                        records.Add(new ResourceRecord(ReverseName(ip), DnsType.PTR, ttl, name + "."));
                    }
                    if (service.Status.ClusterIps.Count > 0)
                    {
                        foreach (var port in service.Spec.Ports.Where(p => p.Name.Length > 0))
                        {
                            records.Add(new ResourceRecord($"_{port.Name}._{ProtocolLabel(port.Protocol)}.{name}", DnsType.SRV, ttl, $"0 100 {port.Port} {name}."));
                        }
                    }
                    break;
            }
        }
        return records;
    }

    private static void AddHeadless(List<ResourceRecord> records, Service service, ServiceEndpoints? set, string name, uint ttl)
    {
        if (set is null) return;
        foreach (var endpoint in set.Endpoints)
        {
            if (!endpoint.Ready && !service.Spec.PublishNotReadyAddresses) continue;
            var hostname = endpoint.Hostname.Length > 0 && endpoint.Subdomain == service.Metadata.Name
                ? endpoint.Hostname
                : endpoint.Ips.Count > 0 ? Dashed(endpoint.Ips[0]) : null;
            foreach (var ip in endpoint.Ips)
            {
                records.Add(new ResourceRecord(name, Family(ip), ttl, ip));
                if (hostname is not null)
                {
                    records.Add(new ResourceRecord($"{hostname}.{name}", Family(ip), ttl, ip));
                    records.Add(new ResourceRecord(ReverseName(ip), DnsType.PTR, ttl, $"{hostname}.{name}."));
                }
            }
            if (hostname is null) continue;
            foreach (var port in service.Spec.Ports.Where(p => p.Name.Length > 0))
            {
                var target = port.TargetCase == ServicePort.TargetOneofCase.TargetPortName
                    ? endpoint.Ports.FirstOrDefault(p => p.Name == port.TargetPortName)?.Port
                    : port.TargetCase == ServicePort.TargetOneofCase.TargetPortNumber ? port.TargetPortNumber : port.Port;
                if (target is null or 0) continue;
                records.Add(new ResourceRecord($"_{port.Name}._{ProtocolLabel(port.Protocol)}.{name}", DnsType.SRV, ttl, $"0 100 {target} {hostname}.{name}."));
            }
        }
    }

    private static string ProtocolLabel(Protocol protocol) => protocol switch
    {
        Protocol.Udp => "udp",
        Protocol.Sctp => "sctp",
        _ => "tcp",
    };

    private static DnsType Family(string ip) =>
        IPAddress.Parse(ip).AddressFamily == AddressFamily.InterNetwork ? DnsType.A : DnsType.AAAA;

    private static string Dashed(string ip) => ip.Replace('.', '-').Replace(':', '-');

    /// <summary>d.c.b.a.in-addr.arpa, or the 32 reversed nibbles under ip6.arpa.</summary>
    public static string ReverseName(string ip)
    {
        var bytes = IPAddress.Parse(ip).GetAddressBytes();
        var builder = new StringBuilder(73);
        if (bytes.Length == 4)
        {
            for (var i = 3; i >= 0; i--) builder.Append(bytes[i]).Append('.');
            return builder.Append("in-addr.arpa").ToString();
        }
        for (var i = 15; i >= 0; i--)
        {
            builder.Append("0123456789abcdef"[bytes[i] & 0xF]).Append('.').Append("0123456789abcdef"[bytes[i] >> 4]).Append('.');
        }
        return builder.Append("ip6.arpa").ToString();
    }
}
