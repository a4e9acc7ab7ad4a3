using System.CommandLine;
using ControlPlane.Cli.Apply;
using ControlPlane.Cli.Connection;
using ControlPlane.Cli.Manifests;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using Grpc.Core;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl delete KIND NAME...</c>, <c>netctl delete KIND/NAME...</c> or <c>netctl delete -f PATH...</c> (the objects a manifest
/// names, in reverse dependency order: service exports, then policies, services and endpoints,
/// then cluster peers and nodes, networks and namespaces).
/// </summary>
internal static class DeleteCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = new Argument<string?>("kind") { Description = "Kind (omit with -f); or name each object as KIND/NAME, as get -o name prints it (svc/web, service/shop/web), kinds may differ", Arity = ArgumentArity.ZeroOrOne };
        kindArgument.CompletionSources.Add(ResourceKinds.All.Where(k => !k.ReadOnly).Select(k => k.Aliases[0]).ToArray());
        var names = new Argument<string[]>("name") { Description = "Names (NAMESPACE/NAME or NAME with -n; KIND/NAME after a first KIND/NAME)", Arity = ArgumentArity.ZeroOrMore };
        var files = new Option<string[]>("--filename", "-f") { Description = "Delete the objects these manifests name (file, directory or -)" };
        var recursive = new Option<bool>("--recursive", "-R") { Description = "Read directories' subdirectories too" };
        var ignoreNotFound = new Option<bool>("--ignore-not-found") { Description = "An object that does not exist is not an error" };
        var etag = new Option<string?>("--etag") { Description = "Delete only if the object's etag is still this one (one name only)" };
        var command = new Command("delete", "Delete objects by name or by manifest") { kindArgument, names, files, recursive, ignoreNotFound, etag };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = global.Context(parse, terminal);
            var targets = new List<(ResourceKind Kind, string Namespace, string Name, string Etag)>();
            var paths = parse.GetValue(files) ?? [];
            var kindName = parse.GetValue(kindArgument);
            var wanted = parse.GetValue(names) ?? [];
            var condition = parse.GetValue(etag) ?? string.Empty;
            if (paths.Length > 0)
            {
                if (kindName is not null) throw CliException.Usage("name objects either with KIND NAME or with -f, not both");
                var read = ManifestReader.Read(paths, parse.GetValue(recursive), Console.In);
                var problems = read.Problems.ToList();
                ManifestValidator.Validate(read.Documents, context.Settings.Namespace, context.NamespaceFromFlag, problems);
                if (ApplyCommand.Report(terminal, problems)) return ExitCodes.Error;
                targets.AddRange(read.Documents.OrderByDescending(d => d.Kind.Tier).Select(d => (d.Kind, d.Meta.Namespace, d.Meta.Name, d.Meta.Etag)));
            }
            else
            {
                if (kindName is null) throw CliException.Usage("name the objects: netctl delete KIND NAME..., netctl delete KIND/NAME... or netctl delete -f FILE");
                // After KIND, "ns/shop" is a NAMESPACE/NAME; when its first part is a kind's name it may
                // be meant as KIND/NAME (delete svcex shop/web ns/shop), and a delete does not guess.
                if (!kindName.Contains('/', StringComparison.Ordinal)
                    && wanted.Select(n => (Name: n, Namespace: n.Split('/')[0])).FirstOrDefault(n => n.Name.Contains('/', StringComparison.Ordinal) && ResourceKinds.Find(n.Namespace) is not null) is { Name: not null } ambiguous)
                    throw CliException.Usage($"'{ambiguous.Name}': after KIND, NAMESPACE/NAME is read, and '{ambiguous.Namespace}' is also a kind's name: "
                        + "name every object KIND/NAME, or give the namespace with -n");
                var groups = GlobalOptions.Named(kindName, wanted, writable: true);
                var count = groups.Sum(g => g.Names.Count);
                if (count == 0) throw CliException.Usage("name at least one object to delete");
                if (condition.Length > 0 && count > 1) throw CliException.Usage("--etag applies to one object only");
                foreach (var (kind, kindNames) in groups)
                {
                    foreach (var name in kindNames)
                    {
                        var (ns, n) = context.Reference(kind, name);
                        targets.Add((kind, ns, n, condition));
                    }
                }
            }
            var failures = 0;
            // Dependents first (KIND/NAME arguments may name several kinds in any order).
            foreach (var tier in targets.OrderByDescending(t => t.Kind.Tier).GroupBy(t => t.Kind.Tier))
            {
                var results = await Bounded.MapAsync(tier.ToList(), 16, async (t, token) =>
                {
                    var reference = t.Kind.Reference(new Contracts.V1.ObjectMeta { Namespace = t.Namespace, Name = t.Name });
                    try
                    {
                        await context.Servers.CallAsync(async (c, o) =>
                        {
                            await t.Kind.Delete!(c, t.Namespace, t.Name, t.Etag, o);
                            return true;
                        }, token);
                        return (reference + " deleted", (string?)null);
                    }
                    catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && parse.GetValue(ignoreNotFound))
                    {
                        return ((string?)null, (string?)null);
                    }
                    catch (RpcException e)
                    {
                        return (null, $"{reference}: {StatusNames.Describe(e)}");
                    }
                }, cancellationToken);
                foreach (var (line, error) in results)
                {
                    if (line is not null) terminal.Out.WriteLine(line);
                    if (error is null) continue;
                    terminal.Fail(error);
                    failures++;
                }
            }
            return failures == 0 ? ExitCodes.Success : ExitCodes.Error;
        });
        return command;
    }
}
