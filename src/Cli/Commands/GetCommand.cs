using System.CommandLine;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using Google.Protobuf;

namespace ControlPlane.Cli.Commands;

/// <summary><c>netctl get KIND [NAME...]</c>.</summary>
internal static class GetCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var kindArgument = GlobalOptions.KindArgument();
        var names = new Argument<string[]>("name") { Description = "Names (NAMESPACE/NAME or NAME with -n); none: all", Arity = ArgumentArity.ZeroOrMore };
        var output = GlobalOptions.Output(OutputFormat.Table, OutputFormat.Wide, OutputFormat.Json, OutputFormat.Yaml, OutputFormat.Name);
        var selector = GlobalOptions.Selector();
        var all = GlobalOptions.AllNamespaces();
        var command = new Command("get", "List objects, or show the named ones") { kindArgument, names, output, selector, all };
        command.SetAction(async (parse, cancellationToken) =>
        {
            var kind = GlobalOptions.Kind(parse.GetValue(kindArgument)!);
            var filter = LabelFilter.Parse(parse.GetValue(selector));
            using var context = global.Context(parse, terminal);
            var wanted = parse.GetValue(names) ?? [];
            var format = parse.GetValue(output);
            List<IMessage> items;
            // Named objects that do not exist are reported one by one after the ones that do (as kubectl does).
            var missing = new List<string>();
            if (wanted.Length > 0)
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
            var showNamespace = kind.Namespaced && (wanted.Length == 0 ? context.ListNamespace(kind, parse.GetValue(all)).Length == 0 : items.Select(i => ResourceKind.MetaOf(i).Namespace).Distinct().Count() > 1);
            if (items.Count > 0 || missing.Count == 0) Objects.Print(terminal, kind, items, format, showNamespace, single: wanted.Length == 1);
            missing.ForEach(terminal.Fail);
            return missing.Count == 0 ? ExitCodes.Success : ExitCodes.Error;
        });
        return command;
    }
}
