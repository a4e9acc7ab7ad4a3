using System.CommandLine;
using System.Globalization;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl wait KIND NAME... --for=programmed</c> (or <c>KIND/NAME...</c>, as <c>get -o name</c>
/// prints them, see <see cref="GlobalOptions.Named"/>): returns once every counted node has
/// programmed each object's current revision (or the one --etag names). Past --timeout it fails
/// with the control plane's DEADLINE_EXCEEDED, which names the nodes still missing.
/// </summary>
internal static class WaitCommand
{
    /// <summary>
    /// Each condition --for takes, what it means and the kinds it applies to (the nodes program
    /// endpoints, services, endpoint sets, networks, policies and namespaces, whose labels select
    /// policy peers; nodes and the ClusterSet kinds are not programmed). The help and the
    /// refusals are made from this table.
    /// </summary>
    internal static readonly IReadOnlyList<(string Name, string Meaning, IReadOnlyList<ResourceKind> Kinds)> Conditions =
    [
        ("programmed", "every counted node's kernel has the object's revision",
            [ResourceKinds.Network, ResourceKinds.Endpoint, ResourceKinds.Service, ResourceKinds.NetworkPolicy, ResourceKinds.ServiceEndpoints, ResourceKinds.Namespace]),
    ];

    private static string KindList(IEnumerable<ResourceKind> kinds) => string.Join(", ", kinds.Select(k => k.Aliases[0]));

    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = GlobalOptions.KindArgument(include: k => Conditions.Any(c => c.Kinds.Contains(k)), slashForm: true);
        var names = new Argument<string[]>("name") { Description = "Names (NAMESPACE/NAME or NAME with -n; KIND/NAME after a first KIND/NAME)", Arity = ArgumentArity.ZeroOrMore };
        var condition = new Option<string>("--for")
        {
            Description = "What to wait for: " + string.Join("; ", Conditions.Select(c => $"{c.Name} ({c.Meaning}), for {KindList(c.Kinds)}")),
            HelpName = string.Join("|", Conditions.Select(c => c.Name)),
            Required = true,
        };
        condition.CompletionSources.Add(Conditions.Select(c => c.Name).ToArray());
        var etag = new Option<string?>("--etag") { Description = "Wait for this revision rather than the current one (one name only)" };
        var command = new Command("wait", "Wait until objects are in force: programmed on every counted node (ready, and caught up)") { kindArgument, names, condition, etag };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var groups = GlobalOptions.Named(parse.GetValue(kindArgument)!, parse.GetValue(names) ?? []);
            var wantedCondition = parse.GetValue(condition);
            var (conditionName, _, conditionKinds) = Conditions.FirstOrDefault(c => c.Name == wantedCondition);
            if (conditionName is null) throw CliException.Usage($"--for '{wantedCondition}' is not a condition ({string.Join(", ", Conditions.Select(c => c.Name))})");
            foreach (var (kind, _) in groups)
            {
                if (!conditionKinds.Contains(kind)) throw CliException.Usage($"--for={conditionName} does not apply to {kind.Name} objects (it applies to {KindList(conditionKinds)})");
            }
            var count = groups.Sum(g => g.Names.Count);
            if (count == 0) throw CliException.Usage("name the objects to wait for: netctl wait KIND NAME... or netctl wait KIND/NAME...");
            if (parse.GetValue(etag) is not null && count > 1) throw CliException.Usage("--etag names one revision: give one name");
            using var context = global.Context(parse, terminal);
            // The server waits --timeout (whole seconds, 1..300) and then answers with the nodes
            // still missing; the call itself gets a few seconds more, so that answer arrives.
            // A longer --timeout is a usage error; a longer one from NETCTL_TIMEOUT or the config
            // file, where it is every command's setting, makes this wait the longest there is.
            var rounded = Math.Round(context.Settings.Timeout.TotalSeconds);
            if (rounded > 300 && parse.GetValue(global.Timeout) is not null)
                throw CliException.Usage(string.Create(CultureInfo.InvariantCulture, $"--timeout {context.Settings.Timeout.TotalSeconds:0.###}s: a wait lasts 1 to 300 seconds"));
            rounded = Math.Min(rounded, 300);
            var seconds = (uint)Math.Max(rounded, 1);
            var callTime = TimeSpan.FromSeconds(seconds) + TimeSpan.FromSeconds(5);
            foreach (var (kind, name) in groups.SelectMany(g => g.Names.Select(n => (g.Kind, n))))
            {
                var (ns, n) = context.Reference(kind, name);
                var request = new WaitProgrammedRequest { Kind = kind.WatchKind, Namespace = ns, Name = n, Etag = parse.GetValue(etag) ?? "", TimeoutSeconds = seconds };
                var answer = await context.Servers.RunAsync((c, token) => c.WaitProgrammedAsync(request, Calls.Within(callTime, token)), cancellationToken);
                var p = answer.Programmed;
                var catchingUp = p.CatchingUp.Count > 0 ? "; catching up: " + string.Join(", ", p.CatchingUp) : "";
                terminal.Out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{kind.Name.ToLowerInvariant()}/{(ns.Length > 0 ? ns + "/" : "")}{n} programmed (etag {p.Etag}) on {p.ProgrammedNodes} of {p.ReadyNodes} counted nodes{catchingUp}"));
            }
            return ExitCodes.Success;
        });
        return command;
    }
}
