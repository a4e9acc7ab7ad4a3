using ControlPlane.Contracts.Services;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Validation;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Grains.ClusterSet;

/// <summary>
/// What one cluster offers for one exported service: the properties of its service, when its
/// export was made, and the endpoints to reach.
/// </summary>
/// <param name="Ports">The cluster's own service ports, with their targets.</param>
/// <param name="Endpoints">Only the endpoints to serve (ready, or all when the service publishes not-ready ones), with only the addresses of the service's IP families.</param>
public sealed record Contribution(string Cluster, Timestamp ExportTime, ServiceImportType Type, IReadOnlyList<ServicePort> Ports,
    SessionAffinity Affinity, uint AffinityTimeout, IReadOnlyList<string> Families, IReadOnlyList<EndpointAddress> Endpoints)
{
    /// <summary>The contribution of an export whose service is valid for export, or null with the reason it is not.</summary>
    public static (Contribution? Contribution, string? Reason, string? Message) Of(string cluster, ServiceExport export, Service? service, ServiceEndpoints? endpoints)
    {
        var key = $"{export.Metadata.Namespace}/{export.Metadata.Name}";
        if (service is null)
        {
            return (null, "NoService", $"service '{key}' does not exist");
        }
        var spec = service.Spec;
        if (spec.Type == ServiceType.ExternalName)
        {
            return (null, "ExternalName", $"service '{key}' is of type EXTERNAL_NAME, which cannot be exported");
        }
        // As the cluster's own DNS and virtual IPs: the served endpoints, with the service's families' addresses.
        var serving = endpoints?.Endpoints.Where(ServiceEndpointRules.Serves(spec)).Select(e => ServiceEndpointRules.WithFamiliesOf(spec, e))
            .Where(e => e.Ips.Count > 0).ToList() ?? [];
        return (new Contribution(cluster, export.Metadata.CreateTime ?? new Timestamp(),
            spec.Type == ServiceType.Headless ? ServiceImportType.HeadlessImport : ServiceImportType.ClusterSetIp,
            [.. spec.Ports], spec.SessionAffinity, spec.SessionAffinityTimeoutSeconds, [.. spec.IpFamilies], serving), null, null);
    }

    /// <summary>A cluster's part of an import stored earlier: kept while its cluster is lost within the grace period.</summary>
    public static Contribution Of(ServiceImport stored, ClusterEndpoints part) => new(part.Cluster, part.ExportTime ?? new Timestamp(),
        stored.Spec.Type, [.. part.Ports], stored.Spec.SessionAffinity, stored.Spec.SessionAffinityTimeoutSeconds, [.. stored.Spec.IpFamilies], [.. part.Endpoints]);
}

/// <summary>
/// Derives a ServiceImport from the contributions of the exporting clusters, after KEP-1645
/// (constraints and conflict resolution): the oldest export (ties: the lower cluster id) decides
/// the type and the session affinity; the ports are the union of every export's ports, a port
/// being known by its name, and where exports define a port differently the oldest export that
/// has that port decides it. An export whose properties lose to an older one's is in conflict, and
/// still contributes its endpoints. Pure.
/// </summary>
public static class ImportCalculator
{
    public const string Valid = "Valid";
    public const string Conflict = "Conflict";

    /// <summary>The import (without its ClusterSetIPs, which the import's grain holds), or null when no cluster exports the service.</summary>
    /// <param name="localFamilies">The families of this cluster's service ranges ("IPv4", "IPv6").</param>
    public static ServiceImport? Import(string ns, string name, IReadOnlyList<Contribution> contributions, IReadOnlyList<string> localFamilies)
    {
        if (contributions.Count == 0)
        {
            return null;
        }
        var winner = Winner(contributions);
        var spec = new ServiceImportSpec
        {
            Type = winner.Type,
            SessionAffinity = winner.Affinity,
            SessionAffinityTimeoutSeconds = winner.AffinityTimeout,
        };
        spec.Ports.Add(MergePorts(contributions).Ports);
        if (winner.Type == ServiceImportType.ClusterSetIp)
        {
            spec.IpFamilies.Add(winner.Families.Where(localFamilies.Contains));
        }
        var status = new ServiceImportStatus();
        var endpoints = new List<List<EndpointAddress>>();
        foreach (var c in contributions.OrderBy(c => c.Cluster, StringComparer.Ordinal))
        {
            var part = new ClusterEndpoints { Cluster = c.Cluster, ExportTime = c.ExportTime };
            part.Ports.Add(c.Ports);
            status.Clusters.Add(part);
            endpoints.Add([.. c.Endpoints.OrderBy(e => e.Name, StringComparer.Ordinal)]);
        }
        var import = new ServiceImport { Metadata = new ObjectMeta { Namespace = ns, Name = name }, Spec = spec, Status = status };
        Share(import, endpoints);
        return import;
    }

    /// <summary>
    /// Puts each cluster's endpoints into its part of <paramref name="import"/>, within the bound
    /// of an object (<see cref="ObjectSize"/>): the clusters share the room, one needing less than
    /// an equal share leaving the rest to the others; a cluster over its share keeps its first
    /// endpoints and counts the rest in <see cref="ClusterEndpoints.Omitted"/>.
    /// </summary>
    private static void Share(ServiceImport import, List<List<EndpointAddress>> endpoints)
    {
        var parts = import.Status.Clusters;
        // Each endpoint list sits in its part, itself an entry of the status, itself a field of the import.
        var budget = ObjectSize.Budget(import) - 8L * parts.Count - 8;
        var needs = endpoints.Select(list => list.Sum(e => (long)ObjectSize.EntrySize(e))).ToArray();
        var order = Enumerable.Range(0, parts.Count).OrderBy(i => needs[i]).ToList();
        for (var k = 0; k < order.Count; k++)
        {
            var i = order[k];
            var share = Math.Max(0, budget) / (order.Count - k);
            var (count, used) = needs[i] <= share ? (endpoints[i].Count, needs[i]) : ObjectSize.Fitting(endpoints[i], share);
            parts[i].Endpoints.Add(endpoints[i].Take(count));
            parts[i].Omitted = (uint)(endpoints[i].Count - count);
            budget -= used;
        }
    }

    /// <summary>The contributions from the oldest export to the youngest (ties: the lower cluster id).</summary>
    public static IEnumerable<Contribution> OldestFirst(IEnumerable<Contribution> contributions) => contributions
        .OrderBy(c => c.ExportTime.Seconds).ThenBy(c => c.ExportTime.Nanos).ThenBy(c => c.Cluster, StringComparer.Ordinal);

    /// <summary>The oldest export.</summary>
    public static Contribution Winner(IReadOnlyList<Contribution> contributions) => OldestFirst(contributions).First();

    /// <summary>
    /// The import's ports: the union of the exports' ports (KEP-1645, "Service Port"), in the order
    /// of the oldest export's, then each younger export's new ones. A port is known by its name:
    /// one that an older export already defines the same way (protocol and number) is the same
    /// port; one that an older export defines differently, or whose protocol and number an older
    /// export's port of another name already takes (a virtual IP cannot tell them apart), keeps
    /// the older definition and is a conflict of the younger export, which
    /// <paramref name="conflicts"/> collects (the first per cluster).
    /// </summary>
    public static (List<ServicePort> Ports, Dictionary<string, string> Conflicts) MergePorts(IReadOnlyList<Contribution> contributions)
    {
        var ports = new List<ServicePort>();
        var byName = new Dictionary<string, (ServicePort Port, Contribution Owner)>(StringComparer.Ordinal);
        var byNumber = new Dictionary<(Protocol, uint), (ServicePort Port, Contribution Owner)>();
        var conflicts = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var c in OldestFirst(contributions))
        {
            foreach (var port in c.Ports.Select(Stripped))
            {
                string? conflict = null;
                if (byName.TryGetValue(port.Name, out var named))
                {
                    if (named.Port.Equals(port)) continue;
                    conflict = $"port {PortText(port)} is defined differently from the same port of the oldest export that has it ({Definition(named.Port)}), which the ClusterSet uses: {Exported(named.Owner)}";
                }
                else if (byNumber.TryGetValue((port.Protocol, port.Port), out var numbered))
                {
                    conflict = $"port {PortText(port)} has the protocol and number of port {PortText(numbered.Port)} of an older export, which the ClusterSet uses: {Exported(numbered.Owner)}";
                }
                if (conflict is not null)
                {
                    conflicts.TryAdd(c.Cluster, conflict);
                    continue;
                }
                byName[port.Name] = (port, c);
                byNumber[(port.Protocol, port.Port)] = (port, c);
                ports.Add(port);
            }
        }
        return (ports, conflicts);
    }

    /// <summary>
    /// The conditions of one cluster's export: Valid (False with the reason when its service
    /// cannot be exported) and Conflict (True, naming the property and the cluster whose export
    /// wins, when a property of this export loses to an older export's).
    /// </summary>
    public static ServiceExportStatus Conditions(string? invalidReason, string? invalidMessage, Contribution? own, IReadOnlyList<Contribution> contributions)
    {
        var status = new ServiceExportStatus();
        if (own is null)
        {
            status.Conditions.Add(ClusterSet.Conditions.Of(Valid, ClusterSet.Conditions.False, invalidReason ?? "NoService", invalidMessage ?? string.Empty));
            status.Conditions.Add(ClusterSet.Conditions.Of(Conflict, ClusterSet.Conditions.False, "NoConflict", string.Empty));
            return status;
        }
        status.Conditions.Add(ClusterSet.Conditions.Of(Valid, ClusterSet.Conditions.True, "Valid", "the service is exported"));
        var (reason, message) = Difference(own, contributions);
        status.Conditions.Add(reason is null
            ? ClusterSet.Conditions.Of(Conflict, ClusterSet.Conditions.False, "NoConflict", string.Empty)
            : ClusterSet.Conditions.Of(Conflict, ClusterSet.Conditions.True, reason, message!));
        return status;
    }

    /// <summary>
    /// The first property in which <paramref name="own"/> loses to an older export (type, a port,
    /// session affinity), with a sentence saying so, or nulls when it loses none. Ports that only
    /// one export has are no conflict: the import has them all.
    /// </summary>
    public static (string? Reason, string? Message) Difference(Contribution own, IReadOnlyList<Contribution> contributions)
    {
        var winner = Winner(contributions);
        if (own.Type != winner.Type)
        {
            return ("TypeConflict", $"the service type {Name(own.Type)} differs from that of the oldest export ({Name(winner.Type)}), which the ClusterSet uses: {Exported(winner)}");
        }
        if (MergePorts(contributions).Conflicts.TryGetValue(own.Cluster, out var port))
        {
            return ("PortConflict", port);
        }
        if (own.Affinity != winner.Affinity || own.AffinityTimeout != winner.AffinityTimeout)
        {
            return ("SessionAffinityConflict", $"the session affinity {Affinity(own)} differs from that of the oldest export ({Affinity(winner)}), which the ClusterSet uses: {Exported(winner)}");
        }
        return (null, null);
    }

    private static string Exported(Contribution c) => $"cluster '{c.Cluster}', exported {c.ExportTime.ToDateTimeOffset():u}";

    /// <summary>Session affinity as a service spells it: None, or ClientIP with its timeout (0 is the default 10800 s).</summary>
    private static string Affinity(Contribution c) => c.Affinity == SessionAffinity.ClientIp
        ? $"ClientIP, timeout {(c.AffinityTimeout == 0 ? 10800 : c.AffinityTimeout)} s"
        : "None";

    private static string Name(ServiceImportType type) => type == ServiceImportType.HeadlessImport ? "Headless" : "ClusterSetIP";

    private static string PortText(ServicePort port) => port.Name.Length > 0 ? $"'{port.Name}' ({Definition(port)})" : $"{Definition(port)} (unnamed)";

    private static string Definition(ServicePort port) => $"{port.Protocol.ToString().ToUpperInvariant()} {port.Port}";

    /// <summary>A service port as the import shows it: name, protocol and port (targets are each cluster's own).</summary>
    public static ServicePort Stripped(ServicePort port) => new()
    {
        Name = port.Name,
        Protocol = port.Protocol == Protocol.Unspecified ? Protocol.Tcp : port.Protocol,
        Port = port.Port,
    };
}
