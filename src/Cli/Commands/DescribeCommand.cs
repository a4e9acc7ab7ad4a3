using System.CommandLine;
using System.Text.Json.Nodes;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl describe KIND NAME</c>: identity, spec and status, the endpoint set of a service, the
/// blocks of a network, and events. The control plane stores no event objects, so the events
/// section lists conditions derived from the object's current status (a node whose lease
/// expired, an endpoint whose node is not ready, a service without ready endpoints, an agent's
/// policy issues), and says so.
/// </summary>
internal static class DescribeCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = GlobalOptions.KindArgument();
        var names = new Argument<string[]>("name") { Description = "Names (NAMESPACE/NAME or NAME with -n); none: every object of the kind", Arity = ArgumentArity.ZeroOrMore };
        var selector = GlobalOptions.Selector();
        var all = GlobalOptions.AllNamespaces();
        var command = new Command("describe", "Show objects in detail, with their status, events and endpoint sets") { kindArgument, names, selector, all };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var kind = GlobalOptions.Kind(parse.GetValue(kindArgument)!);
            var filter = LabelFilter.Parse(parse.GetValue(selector));
            using var context = global.Context(parse, terminal);
            var wanted = parse.GetValue(names) ?? [];
            var items = new List<IMessage>();
            if (wanted.Length == 0)
            {
                items.AddRange(await Objects.ListAsync(context, kind, context.ListNamespace(kind, parse.GetValue(all)), cancellationToken));
            }
            foreach (var name in wanted)
            {
                var (ns, n) = context.Reference(kind, name);
                items.Add(await Objects.GetAsync(context, kind, ns, n, cancellationToken));
            }
            var first = true;
            foreach (var item in items.Where(i => filter.Matches(ResourceKind.MetaOf(i).Labels)))
            {
                if (!first) terminal.Out.WriteLine();
                first = false;
                await DescribeAsync(context, kind, item, cancellationToken);
            }
            if (first && wanted.Length == 0) terminal.Error.WriteLine($"No {kind.Plural} found.");
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
