using System.CommandLine;
using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl describe KIND [NAME...]</c> or <c>netctl describe KIND/NAME...</c>: identity, spec and status, the endpoint set of a service, the
/// blocks of a network, the import of a service export, the clusters of an import, and events.
/// The control plane stores no event objects, so the events section lists conditions derived from
/// the object's current status (a node whose lease expired, an endpoint whose node is not ready, a
/// service without ready endpoints, an agent's policy issues, the conditions of peers and exports,
/// a peer's link), and says so.
/// </summary>
internal static class DescribeCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = GlobalOptions.KindArgument(slashForm: true);
        var names = new Argument<string[]>("name") { Description = "Names (NAMESPACE/NAME or NAME with -n; KIND/NAME after a first KIND/NAME); none: every object of the kind", Arity = ArgumentArity.ZeroOrMore };
        var selector = GlobalOptions.Selector();
        var all = GlobalOptions.AllNamespaces();
        var command = new Command("describe", "Show objects in detail, with their status, events and endpoint sets") { kindArgument, names, selector, all };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var groups = GlobalOptions.Named(parse.GetValue(kindArgument)!, parse.GetValue(names) ?? []);
            var filter = LabelFilter.Parse(parse.GetValue(selector));
            using var context = global.Context(parse, terminal);
            var items = new List<(ResourceKind Kind, IMessage Item)>();
            foreach (var (kind, wanted) in groups)
            {
                if (wanted.Count == 0)
                {
                    var listed = await Objects.ListAsync(context, kind, context.ListNamespace(kind, parse.GetValue(all)), cancellationToken);
                    // A peer's link (status.connection) is computed by a Get only: read each listed peer again.
                    if (kind == ResourceKinds.ClusterPeer)
                    {
                        var peers = listed.Select(i => ResourceKind.MetaOf(i).Name).ToList();
                        listed.Clear();
                        foreach (var name in peers) listed.Add(await Objects.GetAsync(context, kind, string.Empty, name, cancellationToken));
                    }
                    items.AddRange(listed.Select(i => (kind, i)));
                }
                foreach (var name in wanted)
                {
                    var (ns, n) = context.Reference(kind, name);
                    items.Add((kind, await Objects.GetAsync(context, kind, ns, n, cancellationToken)));
                }
            }
            var first = true;
            foreach (var (kind, item) in items.Where(i => filter.Matches(ResourceKind.MetaOf(i.Item).Labels)))
            {
                if (!first) terminal.Out.WriteLine();
                first = false;
                await DescribeAsync(context, kind, item, cancellationToken);
            }
            if (first && groups is [(var listedKind, { Count: 0 })]) terminal.Error.WriteLine($"No {listedKind.Plural} found.");
            return ExitCodes.Success;
        });
        return command;
    }

    private static async Task DescribeAsync(CommandContext context, ResourceKind kind, IMessage item, CancellationToken cancellationToken)
    {
        var output = context.Terminal.Out;
        var meta = ResourceKind.MetaOf(item);
        void Field(string name, string value) => output.WriteLine($"{name + ":",-14}{value}");
        Field("Name", meta.Name);
        if (kind.Namespaced) Field("Namespace", meta.Namespace);
        Field("Kind", kind.Name);
        Field("Labels", Format.Labels(meta.Labels));
        Field("Created", $"{Format.Time(meta.CreateTime)} ({ResourceKinds.Age(item)} ago)");
        Field("UID", meta.Uid);
        Field("Etag", meta.Etag);
        // Protobuf's JSON leaves out false and zero values: readiness is worth saying either way.
        if (item is Node { Status: var nodeStatus }) Field("Ready", Format.Bool(nodeStatus?.Ready ?? false));
        if (item is Endpoint { Status: var endpointStatus }) Field("Ready", $"{Format.Bool(endpointStatus?.EffectiveReady ?? false)} (node ready: {Format.Bool(endpointStatus?.NodeReady ?? false)})");
        if (item is ClusterPeer { Status: var peerStatus })
        {
            Field("Joined", Format.Condition(peerStatus?.Conditions, "Joined"));
            Field("Connected", peerStatus?.Connection is { } link ? Format.Bool(link.Connected) : "-");
            Field("Peer joined", peerStatus?.Connection?.PeerJoined is { } seen ? seen.Status : "-");
        }
        if (item is ServiceExport { Status: var exportStatus })
        {
            Field("Valid", Format.Condition(exportStatus?.Conditions, "Valid"));
            Field("Conflict", Format.Condition(exportStatus?.Conditions, "Conflict"));
        }
        var json = ManifestText.ToJson(kind, item);
        Block(output, "Spec", json["spec"]);
        Block(output, "Status", json["status"]);

        var events = new List<(string Type, string Reason, string Message)>();
        switch (item)
        {
            case Network network when network.Status is { Blocks.Count: > 0 } networkStatus:
                output.WriteLine("Blocks:");
                Indented(context, ["CIDR", "NODE"], networkStatus.Blocks.Select(b => (IReadOnlyList<string>)[b.Cidr, b.Node]));
                break;
            case Node node:
                NodeEvents(node, events);
                break;
            case Endpoint endpoint:
                var status = endpoint.Status ?? new EndpointStatus();
                if (!status.NodeReady) events.Add(("Warning", "NodeNotReady", $"node '{endpoint.Spec?.Node}' has no current lease: the endpoint is not ready"));
                else if (endpoint.Spec is { Ready: false }) events.Add(("Normal", "NotReady", "spec.ready is false"));
                break;
            case Service service:
                await ServiceEndpointsAsync(context, service, events, cancellationToken);
                break;
            case ClusterPeer peer:
                PeerEvents(peer, events);
                break;
            case ServiceExport export:
                ConditionEvents(export.Status?.Conditions ?? [], [("Valid", "True"), ("Conflict", "False")], events);
                await ExportImportAsync(context, export, cancellationToken);
                break;
            case ServiceImport import when import.Status is { Clusters.Count: > 0 } importStatus:
                output.WriteLine("Clusters:");
                Indented(context, ["CLUSTER", "READY", "PORTS", "EXPORTED"], importStatus.Clusters.Select(c => (IReadOnlyList<string>)
                    [c.Cluster, $"{c.Endpoints.Count(e => e.Ready)}/{c.Endpoints.Count}", Format.ServicePorts(c.Ports), Format.Time(c.ExportTime)]));
                break;
        }
        output.WriteLine("Events (derived from the current status; the control plane keeps no event history):");
        if (events.Count == 0) output.WriteLine("  <none>");
        else Indented(context, ["TYPE", "REASON", "MESSAGE"], events.Select(e => (IReadOnlyList<string>)[e.Type, e.Reason, e.Message]));
    }

    private static void NodeEvents(Node node, List<(string, string, string)> events)
    {
        var status = node.Status ?? new NodeStatus();
        events.Add(status.Ready
            ? ("Normal", "Ready", $"lease current since {Format.Time(status.ReadyChangeTime)}")
            : ("Warning", "NotReady", $"lease expired without a heartbeat at {Format.Time(status.ReadyChangeTime)}"));
        foreach (var issue in status.Agent?.PolicyIssues ?? [])
            events.Add(("Warning", "PolicyNotApplied", $"{issue.Endpoint} closed for {issue.Direction} ({string.Join(", ", issue.Policies)}): {issue.Reason}"));
    }

    /// <summary>Joined as the peer's condition says, and this silo's link to it (on a Get only).</summary>
    private static void PeerEvents(ClusterPeer peer, List<(string, string, string)> events)
    {
        var status = peer.Status ?? new ClusterPeerStatus();
        ConditionEvents(status.Conditions, [("Joined", "True")], events);
        switch (status.Connection)
        {
            case { Connected: true } link:
                events.Add(("Normal", "Connected", string.Create(CultureInfo.InvariantCulture,
                    $"watching the peer: last heard {Format.Time(link.LastSync)} ({link.LagSeconds:0.#}s ago), {link.Exports} export(s)")));
                break;
            case { } link:
                var withdraw = link.WithdrawTime is null ? ""
                    : link.WithdrawTime.ToDateTimeOffset() <= DateTimeOffset.UtcNow ? $"; its imports were withdrawn at {Format.Time(link.WithdrawTime)}"
                    : $"; its imports are withdrawn at {Format.Time(link.WithdrawTime)} unless it returns";
                events.Add(("Warning", "NotConnected", (link.Message.Length > 0 ? link.Message.TrimEnd('.') : "this silo's watch of the peer is not open") + withdraw));
                break;
        }
        if (status.Connection?.PeerJoined is { Status: not "True" } seen)
        {
            var why = seen.Message.Length > 0 ? $"{seen.Reason}: {seen.Message}" : seen.Reason;
            events.Add(("Warning", "NotJoinedByPeer",
                $"the peer does not count this cluster as joined ({why}): it imports none of this cluster's exports, its nodes do not reach this cluster's, and this cluster imports none of its exports"));
        }
    }

    /// <summary>One event per condition: Normal when it has its good status, else a Warning with its reason and message.</summary>
    private static void ConditionEvents(IEnumerable<Condition> conditions, (string Type, string Good)[] good, List<(string, string, string)> events)
    {
        foreach (var (type, wanted) in good)
        {
            if (conditions.FirstOrDefault(c => c.Type == type) is not { } condition) continue;
            var reason = condition.Reason.Length > 0 ? condition.Reason : type;
            var message = $"{type}={condition.Status} since {Format.Time(condition.LastTransitionTime)}{(condition.Message.Length > 0 ? ": " + condition.Message : "")}";
            events.Add((condition.Status == wanted ? "Normal" : "Warning", reason, message));
        }
    }

    /// <summary>The import this cluster derived from the export (and any peer's of the same service).</summary>
    private static async Task ExportImportAsync(CommandContext context, ServiceExport export, CancellationToken cancellationToken)
    {
        var output = context.Terminal.Out;
        try
        {
            var import = (ServiceImport)await context.Servers.CallAsync(
                (c, o) => ResourceKinds.ServiceImport.Get(c, export.Metadata.Namespace, export.Metadata.Name, o), cancellationToken);
            output.WriteLine($"Import:       {Format.ImportType(import.Spec?.Type)} {Format.List(import.Spec?.Ips ?? [], "<no ips>")} from {Format.List(import.Status?.Clusters.Select(c => c.Cluster) ?? [])}");
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            output.WriteLine("Import:       <none> (not imported yet)");
        }
    }

    private static async Task ServiceEndpointsAsync(CommandContext context, Service service, List<(string, string, string)> events, CancellationToken cancellationToken)
    {
        var output = context.Terminal.Out;
        if (service.Spec?.Type == ServiceType.ExternalName)
        {
            output.WriteLine($"Endpoints:    none (ExternalName alias of {service.Spec.ExternalName})");
            return;
        }
        try
        {
            var set = (ServiceEndpoints)await context.Servers.CallAsync(
                (c, o) => ResourceKinds.ServiceEndpoints.Get(c, service.Metadata.Namespace, service.Metadata.Name, o), cancellationToken);
            var ready = set.Endpoints.Count(e => e.Ready);
            output.WriteLine($"Endpoints:    {ready} ready of {set.Endpoints.Count}");
            if (set.Endpoints.Count > 0)
            {
                Indented(context, ["NAME", "NODE", "IPS", "READY", "PORTS"],
                    set.Endpoints.Select(e => (IReadOnlyList<string>)[e.Name, e.Node, Format.List(e.Ips), Format.Bool(e.Ready), Format.NamedPorts(e.Ports)]));
            }
            if (ready == 0) events.Add(("Warning", "NoReadyEndpoints", set.Endpoints.Count == 0 ? "the selector matches no endpoint" : "no selected endpoint is ready"));
            if (set.Omitted > 0) events.Add(("Warning", "EndpointsOmitted", $"{set.Omitted} more selected endpoints are left out of the set, which is at its size limit; they get no traffic or DNS records through this service"));
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            output.WriteLine("Endpoints:    <none> (no endpoint set yet)");
            events.Add(("Warning", "NoEndpointSet", "the control plane has not derived this service's endpoint set"));
        }
    }

    private static void Block(TextWriter output, string title, JsonNode? node)
    {
        if (node is null) return;
        output.WriteLine(title + ":");
        foreach (var line in ManifestText.Yaml(node).TrimEnd('\n').Split('\n')) output.WriteLine("  " + line);
    }

    private static void Indented(CommandContext context, IReadOnlyList<string> headers, IEnumerable<IReadOnlyList<string>> rows)
    {
        var all = rows.ToList();
        var widths = headers.Select((h, i) => Math.Max(h.Length, all.Select(r => r[i].Length).DefaultIfEmpty(0).Max())).ToArray();
        string Line(IReadOnlyList<string> cells) => "  " + string.Join("   ", cells.Select((c, i) => i == cells.Count - 1 ? c : c.PadRight(widths[i]))).TrimEnd();
        context.Terminal.Out.WriteLine(Line(headers));
        foreach (var row in all) context.Terminal.Out.WriteLine(Line(row));
    }
}
