using System.CommandLine;
using System.Globalization;
using ControlPlane.Cli.Output;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl wait KIND NAME... --for=programmed</c>: returns once every counted node has
/// programmed each object's current revision (or the one --etag names). Past --timeout it fails
/// with the control plane's DEADLINE_EXCEEDED, which names the nodes still missing.
/// </summary>
internal static class WaitCommand
{
    private static readonly HashSet<Kind> Programmable = [Kind.Endpoint, Kind.Service, Kind.ServiceEndpoints, Kind.Network, Kind.NetworkPolicy];

    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = GlobalOptions.KindArgument();
        var names = new Argument<string[]>("name") { Description = "Names (NAMESPACE/NAME or NAME with -n)", Arity = ArgumentArity.OneOrMore };
        var condition = new Option<string>("--for") { Description = "What to wait for: programmed (every counted node's kernel has the object's revision)", Required = true };
        var etag = new Option<string?>("--etag") { Description = "Wait for this revision rather than the current one (one name only)" };
        var command = new Command("wait", "Wait until objects are in force: programmed on every counted node (ready, and caught up)") { kindArgument, names, condition, etag };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var kind = GlobalOptions.Kind(parse.GetValue(kindArgument)!);
            if (parse.GetValue(condition) != "programmed") throw CliException.Usage($"--for '{parse.GetValue(condition)}': the only condition is 'programmed'");
            if (!Programmable.Contains(kind.WatchKind)) throw CliException.Usage($"{kind.Name} objects are not programmed by the nodes (endpoints, services, endpoint sets, networks and network policies are)");
            var wanted = parse.GetValue(names)!;
            if (parse.GetValue(etag) is not null && wanted.Length > 1) throw CliException.Usage("--etag names one revision: give one name");
            using var context = global.Context(parse, terminal);
            // The server waits --timeout (whole seconds, 1..300) and then answers with the nodes
            // still missing; the call itself gets a few seconds more, so that answer arrives.
            var rounded = Math.Round(context.Settings.Timeout.TotalSeconds);
            if (rounded > 300) throw CliException.Usage(string.Create(CultureInfo.InvariantCulture, $"timeout {context.Settings.Timeout.TotalSeconds:0.###}s: a wait lasts 1 to 300 seconds"));
            var seconds = (uint)Math.Max(rounded, 1);
            var callTime = TimeSpan.FromSeconds(seconds) + TimeSpan.FromSeconds(5);
            foreach (var name in wanted)
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
