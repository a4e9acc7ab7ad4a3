using System.CommandLine;
using System.Text.Json;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl audit [FILE]</c>: reads a silo's audit log (JSON lines, default
/// <c>data/audit.jsonl</c>, the silo's default data directory) on the machine it runs on and prints
/// the writes that match the filters, oldest first: time, caller, method, kind, object, outcome and
/// revision; with --json the matching lines as they are. The files the silo rotated out
/// (FILE.N … FILE.1) are read first, oldest first. A line that is not JSON (a torn last line) is
/// skipped and counted on stderr. A gap (a time the silo could not append, its writes answered
/// INTERNAL) is shown whatever the filters.
/// </summary>
internal static class AuditCommand
{
    /// <summary>The kinds the audit log records: every kind with writes (read-only kinds are written by the silo itself, never through the API).</summary>
    internal static IReadOnlyList<ResourceKind> AuditedKinds { get; } = [.. ResourceKinds.All.Where(k => !k.ReadOnly)];

    public static Command Create(Terminal terminal)
    {
        var file = new Argument<string>("file") { Description = "The audit log (default: data/audit.jsonl)", Arity = ArgumentArity.ZeroOrOne, DefaultValueFactory = _ => Path.Combine("data", "audit.jsonl") };
        var caller = new Option<string?>("--caller") { Description = "Only calls by this caller (certificate CN or peer address)" };
        var kind = new Option<string?>("--kind") { Description = $"Only this kind ({string.Join(", ", AuditedKinds.Select(k => k.Name))}; or an alias)" };
        var name = new Option<string?>("--name") { Description = "Only this object: NAME or NAMESPACE/NAME" };
        var method = new Option<string?>("--method") { Description = "Only this method (Create, Update, Delete, Heartbeat, …)" };
        var failed = new Option<bool>("--failed") { Description = "Only calls that did not succeed" };
        var last = new Option<int>("--last") { Description = "Only the last N matching entries (0: all)" };
        var json = new Option<bool>("--json") { Description = "Print the matching lines as JSON, unchanged" };
        var command = new Command("audit", "Show a silo's audit log of writes: who, what, outcome, revision") { file, caller, kind, name, method, failed, last, json };
        command.SetAction(parse =>
        {
            var path = parse.GetValue(file)!;
            var wantKind = parse.GetValue(kind) is { } kindName
                ? (ResourceKinds.Find(kindName) is { ReadOnly: false } audited ? audited.Name : throw CliException.Usage($"--kind '{kindName}' is not a kind the audit log records ({string.Join(", ", AuditedKinds.Select(k => k.Name))})"))
                : null;
            if (!File.Exists(path)) throw new CliException($"no audit log at {path} (the silo writes <Silo:DataDirectory>/audit.jsonl, or Audit:Path)");
            var (wantCaller, wantName, wantMethod, onlyFailed) = (parse.GetValue(caller), parse.GetValue(name), parse.GetValue(method), parse.GetValue(failed));
            var count = parse.GetValue(last);
            if (count < 0) throw CliException.Usage("--last must not be negative");
            var matches = new Queue<(string Line, Entry Entry)>();
            var torn = 0;
            foreach (var line in ControlPlane.Contracts.Hosting.RotatedFiles.OldestFirst(path).Where(File.Exists).SelectMany(File.ReadLines))
            {
                if (line.Length == 0) continue;
                Entry entry;
                try
                {
                    entry = JsonSerializer.Deserialize(line, AuditJson.Default.Entry) ?? throw new JsonException();
                }
                catch (JsonException)
                {
                    torn++;
                    continue;
                }
                var target = string.IsNullOrEmpty(entry.Namespace) ? entry.Name : $"{entry.Namespace}/{entry.Name}";
                // A gap (writes the silo could not audit) matches every filter: any of them may be in it.
                if (entry.Event == "gap")
                {
                    matches.Enqueue((line, entry));
                    if (count > 0 && matches.Count > count) matches.Dequeue();
                    continue;
                }
                if (wantCaller is not null && !string.Equals(entry.Caller, wantCaller, StringComparison.Ordinal)) continue;
                if (wantKind is not null && !string.Equals(entry.Kind, wantKind, StringComparison.Ordinal)) continue;
                if (wantMethod is not null && !string.Equals(entry.Method, wantMethod, StringComparison.OrdinalIgnoreCase)) continue;
                if (wantName is not null && !string.Equals(target, wantName, StringComparison.Ordinal)) continue;
                if (onlyFailed && entry.Outcome == "OK") continue;
                matches.Enqueue((line, entry));
                if (count > 0 && matches.Count > count) matches.Dequeue();
            }
            if (parse.GetValue(json))
            {
                foreach (var (line, _) in matches) terminal.Out.WriteLine(line);
            }
            else
            {
                string[] header = ["TIME", "CALLER", "METHOD", "KIND", "OBJECT", "OUTCOME", "REVISION"];
                var rows = matches.Select(m => m.Entry.Event == "gap" ? new[]
                {
                    m.Entry.Time ?? string.Empty, "-", "-", "-", $"writes since {m.Entry.Since} unaudited: {m.Entry.Error}", "GAP", string.Empty,
                } : new[]
                {
                    m.Entry.Time ?? string.Empty, m.Entry.Caller ?? string.Empty, m.Entry.Method ?? string.Empty, m.Entry.Kind ?? string.Empty,
                    string.IsNullOrEmpty(m.Entry.Namespace) ? m.Entry.Name ?? string.Empty : $"{m.Entry.Namespace}/{m.Entry.Name}",
                    m.Entry.Outcome ?? string.Empty, m.Entry.Revision ?? string.Empty,
                }).ToList();
                var widths = header.Select((h, i) => rows.Select(r => r[i].Length).Append(h.Length).Max()).ToArray();
                foreach (var row in rows.Prepend(header))
                {
                    terminal.Out.WriteLine(string.Join("  ", row.Select((cell, i) => i == row.Length - 1 ? cell : cell.PadRight(widths[i]))).TrimEnd());
                }
            }
            if (torn > 0) terminal.Error.WriteLine($"warning: {torn} line(s) of {path} are not JSON and were skipped");
            return ExitCodes.Success;
        });
        return command;
    }

    internal sealed record Entry(string? Time, string? Caller, string? Role, bool Authenticated, string? Peer, string? Method, string? Kind,
        string? Namespace, string? Name, string? Outcome, string? Revision, string? Error, string? Event = null, string? Since = null);
}
