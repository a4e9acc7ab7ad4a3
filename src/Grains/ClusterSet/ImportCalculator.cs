using ControlPlane.Contracts.V1;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Grains.ClusterSet;

/// <summary>
/// What one cluster offers for one exported service: the properties of its service, when its
/// export was made, and the endpoints to reach.
/// </summary>
/// <param name="Ports">The cluster's own service ports, with their targets.</param>
/// <param name="Endpoints">Only the endpoints to serve (ready, or all when the service publishes not-ready ones).</param>
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
        var serving = endpoints?.Endpoints.Where(e => e.Ready || spec.PublishNotReadyAddresses).ToList() ?? [];
        return (new Contribution(cluster, export.Metadata.CreateTime ?? new Timestamp(),
            spec.Type == ServiceType.Headless ? ServiceImportType.HeadlessImport : ServiceImportType.ClusterSetIp,
            [.. spec.Ports], spec.SessionAffinity, spec.SessionAffinityTimeoutSeconds, [.. spec.IpFamilies], serving), null, null);
    }

    /// <summary>A cluster's part of an import stored earlier: kept while its cluster is lost within the grace period.</summary>
    public static Contribution Of(ServiceImport stored, ClusterEndpoints part) => new(part.Cluster, part.ExportTime ?? new Timestamp(),
        stored.Spec.Type, [.. part.Ports], stored.Spec.SessionAffinity, stored.Spec.SessionAffinityTimeoutSeconds, [.. stored.Spec.IpFamilies], [.. part.Endpoints]);
}

/// <summary>
/// Derives a ServiceImport from the contributions of the exporting clusters, after KEP-1645: the
/// oldest export (ties: the lower cluster id) decides the type, ports and affinity; an export
/// whose properties differ is in conflict, and still contributes its endpoints. Pure.
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
        spec.Ports.Add(winner.Ports.Select(Stripped));
        if (winner.Type == ServiceImportType.ClusterSetIp)
        {
            spec.IpFamilies.Add(winner.Families.Where(localFamilies.Contains));
        }
        var status = new ServiceImportStatus();
        foreach (var c in contributions.OrderBy(c => c.Cluster, StringComparer.Ordinal))
        {
            var part = new ClusterEndpoints { Cluster = c.Cluster, ExportTime = c.ExportTime };
            part.Ports.Add(c.Ports);
            part.Endpoints.Add(c.Endpoints.OrderBy(e => e.Name, StringComparer.Ordinal));
            status.Clusters.Add(part);
        }
        return new ServiceImport { Metadata = new ObjectMeta { Namespace = ns, Name = name }, Spec = spec, Status = status };
    }

    /// <summary>The oldest export.</summary>
    public static Contribution Winner(IReadOnlyList<Contribution> contributions) => contributions
        .OrderBy(c => c.ExportTime.Seconds).ThenBy(c => c.ExportTime.Nanos).ThenBy(c => c.Cluster, StringComparer.Ordinal).First();

    /// <summary>
    /// The conditions of one cluster's export: Valid (False with the reason when its service
    /// cannot be exported) and Conflict (True, naming the property and the winning cluster, when
    /// its properties differ from the oldest export's).
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
        var winner = Winner(contributions);
        var (reason, what) = Difference(winner, own);
        status.Conditions.Add(reason is null
            ? ClusterSet.Conditions.Of(Conflict, ClusterSet.Conditions.False, "NoConflict", string.Empty)
            : ClusterSet.Conditions.Of(Conflict, ClusterSet.Conditions.True, reason,
                $"the {what} differ from those of the oldest export, which the ClusterSet uses: cluster '{winner.Cluster}', exported {winner.ExportTime.ToDateTimeOffset():u}"));
        return status;
    }

    /// <summary>The first property in which <paramref name="other"/> differs from <paramref name="winner"/>.</summary>
    public static (string? Reason, string? What) Difference(Contribution winner, Contribution other)
    {
        if (other.Type != winner.Type) return ("TypeConflict", "service type");
        if (!SamePorts(winner.Ports, other.Ports)) return ("PortConflict", "ports");
        if (other.Affinity != winner.Affinity || other.AffinityTimeout != winner.AffinityTimeout) return ("SessionAffinityConflict", "session affinity settings");
        return (null, null);
    }

    private static bool SamePorts(IReadOnlyList<ServicePort> a, IReadOnlyList<ServicePort> b) =>
        a.Select(Stripped).OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Port)
            .SequenceEqual(b.Select(Stripped).OrderBy(p => p.Name, StringComparer.Ordinal).ThenBy(p => p.Port));

    /// <summary>A service port as the import shows it: name, protocol and port (targets are each cluster's own).</summary>
    public static ServicePort Stripped(ServicePort port) => new()
    {
        Name = port.Name,
        Protocol = port.Protocol == Protocol.Unspecified ? Protocol.Tcp : port.Protocol,
        Port = port.Port,
    };
}
