using System.CommandLine;
using System.Text.Json.Nodes;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl node heartbeat NAME...</c> renews nodes' leases as their agents do (nodes made by
/// hand, for trying things out). <c>netctl node status [NAME...]</c>: each node's readiness (its lease), when that last changed
/// (the heartbeat that renewed an expired lease, or the expiry), and what its agent reported:
/// its programmed state (Convergence/Status: counted, catching up or never reported; when it
/// last reported; commit → programmed latency) and policy issues (endpoints closed because their
/// policy could not be applied).
/// </summary>
internal static class NodeCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var names = new Argument<string[]>("name") { Description = "Nodes (none: all)", Arity = ArgumentArity.ZeroOrMore };
        var output = GlobalOptions.Output(OutputFormat.Table, OutputFormat.Json, OutputFormat.Yaml);
        var status = new Command("status", "Readiness, lease and agent status of nodes") { names, output };
        status.SetAction(async (parse, cancellationToken) =>
        {
            using var context = global.Context(parse, terminal);
            var wanted = parse.GetValue(names) ?? [];
            var nodes = new List<Node>();
            if (wanted.Length == 0)
                nodes.AddRange((await Objects.ListAsync(context, ResourceKinds.Node, string.Empty, cancellationToken)).Cast<Node>());
            foreach (var name in wanted)
                nodes.Add((Node)await Objects.GetAsync(context, ResourceKinds.Node, string.Empty, name, cancellationToken));
            var convergence = (await context.Servers.CallAsync((c, o) => c.ConvergenceStatusAsync(o), cancellationToken)).Nodes.ToDictionary(n => n.Name);
            NodeConvergence? Of(Node n) => convergence.GetValueOrDefault(n.Metadata.Name);
            var format = parse.GetValue(output);
            if (format is OutputFormat.Json or OutputFormat.Yaml)
            {
                var list = new JsonArray([.. nodes.Select(n => Json(n, Of(n)))]);
                terminal.Out.Write(format == OutputFormat.Json ? ManifestText.Json(list) + "\n" : ManifestText.Yaml(list));
                return ExitCodes.Success;
            }
            if (nodes.Count == 0)
            {
                terminal.Error.WriteLine("No nodes found.");
                return ExitCodes.Success;
            }
            var now = DateTimeOffset.UtcNow;
            terminal.Table(["NAME", "READY", "LAST-CHANGE", "FOR", "UNDERLAY", "PROGRAMMED", "REPORTED", "POLICY-ISSUES"], nodes.Select(n => (IReadOnlyList<string>)
            [
                n.Metadata.Name,
                Format.Bool(n.Status?.Ready ?? false),
                Format.Time(n.Status?.ReadyChangeTime),
                Format.Age(n.Status?.ReadyChangeTime, now),
                n.Spec?.UnderlayIp ?? "",
                Programmed(n, Of(n)),
                Of(n) is { SecondsSinceReport: >= 0 } c ? $"{c.SecondsSinceReport:0}s ago" : "never",
                (n.Status?.Agent?.PolicyIssues.Count ?? 0).ToString(System.Globalization.CultureInfo.InvariantCulture),
            ]));
            var issues = nodes.SelectMany(n => (n.Status?.Agent?.PolicyIssues ?? []).Select(i => (Node: n.Metadata.Name, Issue: i))).ToList();
            if (issues.Count > 0)
            {
                terminal.Out.WriteLine();
                terminal.Out.WriteLine("Policy issues (each endpoint stays closed in that direction until the cause is gone):");
                terminal.Table(["NODE", "ENDPOINT", "DIRECTION", "POLICIES", "REASON"], issues.Select(x => (IReadOnlyList<string>)
                    [x.Node, x.Issue.Endpoint, x.Issue.Direction, Format.List(x.Issue.Policies), x.Issue.Reason]));
            }
            return ExitCodes.Success;
        });
        var renewed = new Argument<string[]>("name") { Description = "Nodes to renew", Arity = ArgumentArity.OneOrMore };
        var heartbeat = new Command("heartbeat", "Renew nodes' leases, as their agents do (for nodes made by hand)") { renewed };
        heartbeat.SetAction(async (parse, cancellationToken) =>
        {
            using var context = global.Context(parse, terminal);
            foreach (var name in parse.GetValue(renewed) ?? [])
            {
                var answer = await context.Servers.CallAsync((c, o) => c.HeartbeatAsync(name, o), cancellationToken);
                terminal.Out.WriteLine($"node/{name} renewed: ready {Format.Bool(answer.Ready)}, lease {answer.LeaseSeconds}s");
            }
            return ExitCodes.Success;
        });
        return new Command("node", "Node commands") { status, heartbeat };
    }

    /// <summary>counted (ready and caught up: waits wait for it; it may still be behind the newest change), catching-up, unreported (no report since the control plane started), or - (not ready).</summary>
    private static string Programmed(Node node, NodeConvergence? convergence) =>
        !(node.Status?.Ready ?? false) ? "-"
        : convergence is null or { SecondsSinceReport: < 0 } ? "unreported"
        : convergence.Counted ? "counted" : "catching-up";

    private static JsonNode Json(Node node, NodeConvergence? convergence) => new JsonObject
    {
        ["name"] = node.Metadata.Name,
        ["ready"] = node.Status?.Ready ?? false,
        ["programmed"] = Programmed(node, convergence),
        ["seconds_since_report"] = convergence?.SecondsSinceReport ?? -1,
        ["latency_p50_ms"] = convergence?.LatencyP50Ms ?? 0,
        ["latency_p99_ms"] = convergence?.LatencyP99Ms ?? 0,
        ["ready_change_time"] = Format.Time(node.Status?.ReadyChangeTime),
        ["underlay_ip"] = node.Spec?.UnderlayIp ?? "",
        ["vtep_mac"] = node.Status?.VtepMac ?? "",
        ["policy_issues"] = node.Status?.Agent is { } agent ? ManifestText.MessageJson(agent)["policy_issues"]?.DeepClone() ?? new JsonArray() : new JsonArray(),
    };

}
