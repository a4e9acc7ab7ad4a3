using System.CommandLine;
using System.Text.Json.Nodes;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using Google.Protobuf;

namespace ControlPlane.Cli.Commands;

/// <summary><c>netctl get KIND [NAME...]</c> or <c>netctl get KIND/NAME...</c> (see <see cref="GlobalOptions.Named"/>).</summary>
internal static class GetCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = GlobalOptions.KindArgument(slashForm: true);
        var names = new Argument<string[]>("name") { Description = "Names (NAMESPACE/NAME or NAME with -n; KIND/NAME after a first KIND/NAME); none: all", Arity = ArgumentArity.ZeroOrMore };
        var output = GlobalOptions.Output(OutputFormat.Table, OutputFormat.Wide, OutputFormat.Json, OutputFormat.Yaml, OutputFormat.Name);
        var selector = GlobalOptions.Selector();
        var all = GlobalOptions.AllNamespaces();
        var command = new Command("get", "List objects, or show the named ones") { kindArgument, names, output, selector, all };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var groups = GlobalOptions.Named(parse.GetValue(kindArgument)!, parse.GetValue(names) ?? []);
            if (parse.GetValue(all) && groups.Any(g => g.Names.Count > 0))
                throw CliException.Usage("-A lists all namespaces, and a named object is read from one: name it NAMESPACE/NAME, or give -n");
            var filter = LabelFilter.Parse(parse.GetValue(selector));
            using var context = global.Context(parse, terminal);
            var format = parse.GetValue(output);
            // Named objects that do not exist are reported one by one after the ones that do (as kubectl does).
            var missing = new List<string>();
            var found = new List<(ResourceKind Kind, List<IMessage> Items, bool ShowNamespace)>();
            foreach (var (kind, wanted) in groups)
            {
                List<IMessage> items;
                if (wanted.Count > 0)
                {
                    items = [];
                    foreach (var name in wanted)
                    {
                        var (ns, n) = context.Reference(kind, name);
                        try
                        {
                            items.Add(await Objects.GetAsync(context, kind, ns, n, cancellationToken));
                        }
                        catch (Objects.NotFoundException e)
                        {
                            missing.Add(e.Message);
                        }
                    }
                    items = [.. items.Where(i => filter.Matches(ResourceKind.MetaOf(i).Labels))];
                }
                else
                {
                    var ns = context.ListNamespace(kind, parse.GetValue(all));
                    items = [.. (await Objects.ListAsync(context, kind, ns, cancellationToken)).Where(i => filter.Matches(ResourceKind.MetaOf(i).Labels))];
                }
                var showNamespace = kind.Namespaced && (wanted.Count == 0 ? context.ListNamespace(kind, parse.GetValue(all)).Length == 0 : items.Select(i => ResourceKind.MetaOf(i).Namespace).Distinct().Count() > 1);
                found.Add((kind, items, showNamespace));
            }
            if (found.Count == 1)
            {
                var (kind, items, showNamespace) = found[0];
                // An empty listing of one namespace says which (a mistyped -n shows as such, as kubectl's "No resources found in X namespace.").
                var listed = groups[0].Names.Count == 0 && kind.Namespaced ? context.ListNamespace(kind, parse.GetValue(all)) : string.Empty;
                if (items.Count > 0 || missing.Count == 0) Objects.Print(terminal, kind, items, format, showNamespace, single: groups[0].Names.Count == 1, listed);
            }
            else if (format is OutputFormat.Json or OutputFormat.Yaml)
            {
                // Objects of several kinds (KIND/NAME arguments): one List holding them all.
                var list = ManifestText.List(found.SelectMany(f => f.Items.Select(i => (JsonNode)ManifestText.ToJson(f.Kind, i))));
                if (format == OutputFormat.Json) terminal.Out.WriteLine(ManifestText.Json(list));
                else terminal.Out.Write(ManifestText.Yaml(list));
            }
            else
            {
                // A table per kind, a blank line between them (as kubectl prints them).
                var first = true;
                foreach (var (kind, items, showNamespace) in found.Where(f => f.Items.Count > 0))
                {
                    if (!first && format != OutputFormat.Name) terminal.Out.WriteLine();
                    first = false;
                    Objects.Print(terminal, kind, items, format, showNamespace, single: false);
                }
            }
            missing.ForEach(terminal.Fail);
            return missing.Count == 0 ? ExitCodes.Success : ExitCodes.Error;
        });
        return command;
    }
}
