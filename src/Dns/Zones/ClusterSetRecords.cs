using System.Net;
using ControlPlane.Contracts.Services;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// Synthesises the records of the Kubernetes DNS-Based Multicluster Service Discovery
/// specification (KEP-1645, schema 1.0.0) from ServiceImports, into the ClusterSet zone
/// (<c>clusterset.local</c>):
/// <list type="bullet">
/// <item>CLUSTER_SET_IP: <c>&lt;svc&gt;.&lt;ns&gt;.svc.&lt;zone&gt;</c> A/AAAA with the
/// ClusterSetIPs, SRV per named port with the import's port and the service name as target, and a
/// PTR for each ClusterSetIP (an address of our service ranges that no cluster name points to);</item>
/// <item>HEADLESS_IMPORT: the service name with every endpoint address of every exporting cluster,
/// <c>&lt;hostname&gt;.&lt;clusterid&gt;.&lt;svc&gt;.&lt;ns&gt;.svc.&lt;zone&gt;</c> A/AAAA per
/// endpoint, and SRV per named port and endpoint pointing there; PTRs only for addresses in our
/// reverse zones that have none yet (a local endpoint keeps its cluster name; other clusters'
/// networks are not our reverse zones unless Dns:ReverseZones claims them).</item>
/// </list>
/// Choices where the specification leaves one, as the cluster zone makes them
/// (<see cref="ClusterRecords"/>): an endpoint without a hostname, or whose subdomain is not the
/// service, gets one derived from its address; a headless SRV record carries the port the
/// exporting cluster's own service port reaches on that endpoint (its named target port resolved
/// per endpoint; none when that cluster's service has no port of that name and protocol: the
/// import's ports are the union of the exports' ports, so not every cluster has each); the import holds only
/// the endpoints to serve, so none is filtered here. No record names a cluster alone
/// (<c>&lt;clusterid&gt;.&lt;svc&gt;...</c> is an empty non-terminal for headless imports, so
/// NODATA, and absent for CLUSTER_SET_IP ones). An endpoint name longer than a DNS name may be
/// gets no hostname or SRV records (its addresses stay on the service name).
/// </summary>
public static class ClusterSetRecords
{
    public const string SchemaVersion = "1.0.0";

    /// <param name="pointer">Adds a PTR for the address to the target name when its reverse name
    /// is ours and has none; the flag says whether an address outside our reverse zones is counted
    /// as unclaimed (a ClusterSetIP is, since it comes from our service ranges; an endpoint is not,
    /// since other clusters' networks are theirs).</param>
    public static void Add(List<ResourceRecord> records, string zone, uint ttl, IEnumerable<ServiceImport> imports, Action<IPAddress, string, bool> pointer)
    {
        records.Add(new ResourceRecord($"dns-version.{zone}", DnsType.TXT, ttl, $"\"{SchemaVersion}\""));
        foreach (var import in imports)
        {
            var name = $"{import.Metadata.Name}.{import.Metadata.Namespace}.svc.{zone}";
            if (import.Spec.Type == ServiceImportType.HeadlessImport) AddHeadless(records, import, name, ttl, pointer);
            else AddClusterSetIp(records, import, name, ttl, pointer);
        }
    }

    private static void AddClusterSetIp(List<ResourceRecord> records, ServiceImport import, string name, uint ttl, Action<IPAddress, string, bool> pointer)
    {
        foreach (var ip in import.Spec.Ips)
        {
            var address = IPAddress.Parse(ip);
            records.Add(new ResourceRecord(name, ClusterRecords.Family(address), ttl, ip));
            pointer(address, name + ".", true);
        }
        if (import.Spec.Ips.Count == 0) return;
        foreach (var port in import.Spec.Ports.Where(p => p.Name.Length > 0))
        {
            records.Add(new ResourceRecord(ClusterRecords.SrvName(port, name), DnsType.SRV, ttl, $"0 100 {port.Port} {name}."));
        }
    }

    private static void AddHeadless(List<ResourceRecord> records, ServiceImport import, string name, uint ttl, Action<IPAddress, string, bool> pointer)
    {
        var ports = import.Spec.Ports.Where(p => p.Name.Length > 0).ToList();
        foreach (var cluster in import.Status?.Clusters ?? [])
        {
            foreach (var endpoint in cluster.Endpoints)
            {
                var addresses = endpoint.Ips.Select(IPAddress.Parse).ToList();
                if (addresses.Count == 0) continue;
                var host = $"{ClusterRecords.Hostname(endpoint, import.Metadata.Name, addresses[0])}.{cluster.Cluster}.{name}";
                var named = host.Length <= DnsName.MaxTextLength;
                foreach (var address in addresses)
                {
                    var ip = address.ToString();
                    records.Add(new ResourceRecord(name, ClusterRecords.Family(address), ttl, ip));
                    if (!named) continue;
                    records.Add(new ResourceRecord(host, ClusterRecords.Family(address), ttl, ip));
                    pointer(address, host + ".", false);
                }
                if (!named) continue;
                foreach (var port in ports)
                {
                    // The exporting cluster's own port of that name and protocol knows the target on its endpoints.
                    if (cluster.Ports.FirstOrDefault(p => p.Name == port.Name && SameProtocol(p, port)) is not { } own || ServicePorts.Target(own, endpoint) is not { } target) continue;
                    records.Add(new ResourceRecord(ClusterRecords.SrvName(port, name), DnsType.SRV, ttl, $"0 100 {target} {host}."));
                }
            }
        }
    }

    private static bool SameProtocol(ServicePort a, ServicePort b) =>
        (a.Protocol == Protocol.Unspecified ? Protocol.Tcp : a.Protocol) == (b.Protocol == Protocol.Unspecified ? Protocol.Tcp : b.Protocol);
}
