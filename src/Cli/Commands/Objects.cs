using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Cli.Commands;

/// <summary>Reading objects for get, describe, delete and node status, and printing them.</summary>
internal static class Objects
{
    /// <summary>Every object of a kind in a namespace ("" for all), page by page.</summary>
    public static async Task<List<IMessage>> ListAsync(CommandContext context, ResourceKind kind, string ns, CancellationToken cancellationToken)
    {
        var all = new List<IMessage>();
        var token = string.Empty;
        do
        {
            var request = new ListRequest { Namespace = ns, PageSize = 1000, PageToken = token };
            var (items, next) = await context.Servers.CallAsync((c, o) => kind.ListPage(c, request, o), cancellationToken);
            all.AddRange(items);
            token = next;
        }
        while (token.Length > 0);
        return all;
    }

    public static async Task<IMessage> GetAsync(CommandContext context, ResourceKind kind, string ns, string name, CancellationToken cancellationToken)
    {
        try
        {
            return await context.Servers.CallAsync((c, o) => kind.Get(c, ns, name, o), cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw new NotFoundException($"{kind.Name.ToLowerInvariant()} '{(ns.Length > 0 ? ns + "/" : "")}{name}' not found");
        }
    }

    /// <summary>A named object that does not exist (exit 1, like every <see cref="CliException"/>).</summary>
    public sealed class NotFoundException(string message) : CliException(message);

    /// <summary>
    /// Prints objects in the chosen format; <paramref name="single"/> prints one object rather than
    /// a List. A table with no rows says so, naming <paramref name="listedNamespace"/> when one was listed.
    /// </summary>
    public static void Print(Terminal terminal, ResourceKind kind, IReadOnlyList<IMessage> items, OutputFormat format, bool showNamespace, bool single, string listedNamespace = "")
    {
        switch (format)
        {
            case OutputFormat.Json:
                terminal.Out.WriteLine(ManifestText.Json(single && items.Count == 1 ? ManifestText.ToJson(kind, items[0]) : ManifestText.List(items.Select(i => ManifestText.ToJson(kind, i)))));
                break;
            case OutputFormat.Yaml:
                terminal.Out.Write(ManifestText.Yaml(single && items.Count == 1 ? ManifestText.ToJson(kind, items[0]) : ManifestText.List(items.Select(i => ManifestText.ToJson(kind, i)))));
                break;
            case OutputFormat.Name:
                foreach (var item in items) terminal.Out.WriteLine(kind.Reference(ResourceKind.MetaOf(item)));
                break;
            default:
                if (items.Count == 0)
                {
                    terminal.Error.WriteLine(listedNamespace.Length > 0 ? $"No {kind.Plural} found in namespace {listedNamespace}." : $"No {kind.Plural} found.");
                    return;
                }
                var (headers, rows) = Rows(kind, items, format == OutputFormat.Wide, showNamespace);
                terminal.Table(headers, rows);
                break;
        }
    }

    public static (List<string> Headers, List<IReadOnlyList<string>> Rows) Rows(ResourceKind kind, IEnumerable<IMessage> items, bool wide, bool showNamespace)
    {
        var columns = kind.Columns.Where(c => wide || !c.Wide).ToList();
        var headers = new List<string>();
        if (showNamespace) headers.Add("NAMESPACE");
        headers.Add("NAME");
        headers.AddRange(columns.Select(c => c.Header));
        headers.Add("AGE");
        var rows = items.Select(item =>
        {
            var meta = ResourceKind.MetaOf(item);
            var row = new List<string>();
            if (showNamespace) row.Add(meta.Namespace);
            row.Add(meta.Name);
            row.AddRange(columns.Select(c => c.Value(item)));
            row.Add(ResourceKinds.Age(item));
            return (IReadOnlyList<string>)row;
        }).ToList();
        return (headers, rows);
    }
}
