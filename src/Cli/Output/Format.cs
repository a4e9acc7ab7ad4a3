using System.Globalization;
using ControlPlane.Contracts.V1;
using Google.Protobuf.Collections;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Cli.Output;

/// <summary>Short renderings of values for tables and descriptions.</summary>
internal static class Format
{
    /// <summary>Time since <paramref name="time"/>, kubectl style: 45s, 12m, 5h, 3d.</summary>
    public static string Age(Timestamp? time, DateTimeOffset now)
    {
        if (time is null || (time.Seconds == 0 && time.Nanos == 0)) return "<unknown>";
        var span = now - time.ToDateTimeOffset();
        if (span < TimeSpan.Zero) span = TimeSpan.Zero;
        return span.TotalSeconds < 120 ? $"{(int)span.TotalSeconds}s"
            : span.TotalMinutes < 120 ? $"{(int)span.TotalMinutes}m"
            : span.TotalHours < 48 ? $"{(int)span.TotalHours}h"
            : $"{(int)span.TotalDays}d";
    }

    public static string Time(Timestamp? time) =>
        time is null ? "<unknown>" : time.ToDateTimeOffset().ToString("yyyy-MM-dd'T'HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Labels(MapField<string, string> labels) =>
        labels.Count == 0 ? "<none>" : string.Join(",", labels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}"));

    public static string List(IEnumerable<string> values, string empty = "<none>")
    {
        var joined = string.Join(",", values);
        return joined.Length == 0 ? empty : joined;
    }

    public static string Protocol(Protocol protocol) => protocol == Contracts.V1.Protocol.Unspecified ? "TCP" : protocol.ToString().ToUpperInvariant();

    public static string Bool(bool value) => value ? "True" : "False";

    /// <summary>The status of a Kubernetes-style condition ("True", "False", "Unknown"), or "-" when it is not set yet.</summary>
    public static string Condition(IEnumerable<Condition>? conditions, string type) =>
        conditions?.FirstOrDefault(c => c.Type == type)?.Status is { Length: > 0 } status ? status : "-";

    /// <summary>An import's type as the Multi-Cluster Services API names it.</summary>
    public static string ImportType(ServiceImportType? type) => type switch
    {
        ServiceImportType.ClusterSetIp => "ClusterSetIP",
        ServiceImportType.HeadlessImport => "Headless",
        _ => "-",
    };

    public static string Selector(LabelSelector? selector)
    {
        if (selector is null) return "<none>";
        var parts = selector.MatchLabels.OrderBy(l => l.Key, StringComparer.Ordinal).Select(l => $"{l.Key}={l.Value}").ToList();
        foreach (var e in selector.MatchExpressions)
        {
            parts.Add(e.Operator switch
            {
                "Exists" => e.Key,
                "DoesNotExist" => "!" + e.Key,
                "In" => $"{e.Key} in ({string.Join(",", e.Values)})",
                "NotIn" => $"{e.Key} notin ({string.Join(",", e.Values)})",
                _ => $"{e.Key} {e.Operator} ({string.Join(",", e.Values)})",
            });
        }
        return parts.Count == 0 ? "<all>" : string.Join(",", parts);
    }

    public static string ServicePorts(IEnumerable<ServicePort> ports) => List(ports.Select(p =>
    {
        var target = p.TargetCase switch
        {
            ServicePort.TargetOneofCase.TargetPortName => ":" + p.TargetPortName,
            ServicePort.TargetOneofCase.TargetPortNumber when p.TargetPortNumber != p.Port => ":" + p.TargetPortNumber.ToString(CultureInfo.InvariantCulture),
            _ => string.Empty,
        };
        return $"{p.Port}{target}/{Protocol(p.Protocol)}";
    }));

    public static string NamedPorts(IEnumerable<NamedPort> ports) =>
        List(ports.Select(p => $"{(p.Name.Length > 0 ? p.Name + ":" : string.Empty)}{p.Port}/{Protocol(p.Protocol)}"));
}
