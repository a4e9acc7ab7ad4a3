using System.CommandLine;
using ControlPlane.Cli.Apply;
using ControlPlane.Cli.Manifests;
using ControlPlane.Cli.Output;
using Spectre.Console;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl apply -f PATH...</c>: read every document, validate all of them on the client, plan
/// against the server (reads only), and only when nothing is wrong anywhere, write. With
/// <c>--dry-run=client</c> it stops after validation, with <c>--dry-run=server</c> after the plan.
/// </summary>
internal static class ApplyCommand
{
    public static Command Create(GlobalOptions global, Terminal terminal)
    {
        var files = new Option<string[]>("--filename", "-f")
        {
            Description = "Manifest file, directory or - for standard input (repeatable)",
            Required = true,
            AllowMultipleArgumentsPerToken = false,
        };
        var recursive = new Option<bool>("--recursive", "-R") { Description = "Read directories' subdirectories too" };
        var dryRun = new Option<string>("--dry-run")
        {
            Description = "none: apply; client: validate only, contacting no server; server: also read the server and report what it would refuse, writing nothing",
            DefaultValueFactory = _ => "none",
        };
        dryRun.AcceptOnlyFromAmong("none", "client", "server");
        var parallel = new Option<int>("--parallel")
        {
            Description = "Concurrent calls (objects of one kind tier are written concurrently)",
            DefaultValueFactory = _ => 16,
        };
        parallel.Validators.Add(r =>
        {
            if (r.GetValueOrDefault<int>() is < 1 or > 256) r.AddError("--parallel must be 1..256");
        });
        var command = new Command("apply", "Create or update objects from YAML or JSON manifests")
        {
            files, recursive, dryRun, parallel,
        };
        command.SetAction(async (parse, cancellationToken) =>
        {
            using var context = global.Context(parse, terminal);
            return await RunAsync(context, parse.GetValue(files)!, parse.GetValue(recursive), parse.GetValue(dryRun) ?? "none",
                parse.GetValue(parallel), cancellationToken);
        });
        return command;
    }

    private static async Task<int> RunAsync(CommandContext context, string[] paths, bool recursive, string dryRun, int parallel, CancellationToken cancellationToken)
    {
        var terminal = context.Terminal;
        var read = ManifestReader.Read(paths, recursive, Console.In);
        var problems = read.Problems.ToList();
        ManifestValidator.Validate(read.Documents, context.Settings.Namespace, context.NamespaceFromFlag, problems);
        if (problems.Count == 0 && read.Documents.Count == 0) problems.Add(new ManifestProblem(string.Join(", ", paths.Select(p => p == "-" ? "<stdin>" : p)), "input", null, 0, "holds no objects"));
        if (Report(terminal, problems)) return ExitCodes.Error;
        var documents = read.Documents.OrderBy(d => d.Kind.Tier).ToList();
        if (dryRun == "client")
        {
            foreach (var document in documents) terminal.Out.WriteLine($"{document.Kind.Reference(document.Meta)} valid (client dry run)");
            return ExitCodes.Success;
        }

        var (plan, planProblems) = await new ApplyPlanner(context.Servers, parallel).PlanAsync(documents, cancellationToken);
        if (Report(terminal, planProblems)) return ExitCodes.Error;
        if (dryRun == "server")
        {
            foreach (var change in plan)
                terminal.Out.WriteLine($"{change.Document.Kind.Reference(change.Document.Meta)} {(change.IsCreate ? "created" : change.WouldChange ? "configured" : "unchanged")} (server dry run)");
            return ExitCodes.Success;
        }

        var results = await RunWithProgressAsync(context, plan, parallel, cancellationToken);
        var failed = results.Where(r => r.Outcome is ApplyRunner.Outcome.Failed or ApplyRunner.Outcome.Unknown or ApplyRunner.Outcome.Skipped).ToList();
        foreach (var result in failed.Where(r => r.Outcome is ApplyRunner.Outcome.Failed or ApplyRunner.Outcome.Unknown))
            terminal.Fail($"{result.Change.Document.Source}: {result.Change.Document.Describe()}: {result.Error}");
        var unknown = failed.Count(r => r.Outcome == ApplyRunner.Outcome.Unknown);
        if (unknown > 0) terminal.Fail($"{unknown} write(s) may have been made: their server went away after they were sent (listed above; read them back, or apply again)");
        var skipped = failed.Count(r => r.Outcome == ApplyRunner.Outcome.Skipped);
        if (skipped > 0) terminal.Fail($"{skipped} later document(s) not applied because an earlier one failed");
        return failed.Count == 0 ? ExitCodes.Success : ExitCodes.Error;
    }

    /// <summary>One line per object; on a terminal, a long apply shows a progress bar and a summary instead.</summary>
    private static async Task<IReadOnlyList<ApplyRunner.Result>> RunWithProgressAsync(CommandContext context, List<PlannedChange> plan, int parallel, CancellationToken cancellationToken)
    {
        var terminal = context.Terminal;
        var lines = terminal.Out;
        void Line(ApplyRunner.Result r)
        {
            var verb = r.Outcome switch
            {
                ApplyRunner.Outcome.Created => "created",
                ApplyRunner.Outcome.Configured => "configured",
                ApplyRunner.Outcome.Unchanged => "unchanged",
                _ => null,
            };
            if (verb is null) return;
            lock (lines) lines.WriteLine($"{r.Change.Document.Kind.Reference(r.Change.Document.Meta)} {verb}");
        }

        // What was written, and which of it was said: an interrupted apply still names every write
        // that was made (a tier's lines come when the whole tier is done).
        var done = new List<ApplyRunner.Result>();
        var said = new HashSet<ApplyRunner.Result>(ReferenceEqualityComparer.Instance);
        var plain = !(terminal.OutputIsTerminal && terminal.ErrorIsTerminal && plan.Count > 20);
        IReadOnlyList<ApplyRunner.Result> results = [];
        try
        {
            if (plain)
            {
                return await new ApplyRunner(context.Servers, parallel)
                {
                    Done = r => { lock (done) done.Add(r); },
                    TierDone = tier =>
                    {
                        foreach (var r in tier) Line(r);
                        lock (done) said.UnionWith(tier);
                    },
                }.RunAsync(plan, cancellationToken);
            }
            await terminal.Stderr.Progress().AutoClear(false).StartAsync(async progress =>
            {
                var task = progress.AddTask($"applying {plan.Count} objects", maxValue: plan.Count);
                results = await new ApplyRunner(context.Servers, parallel)
                {
                    Done = r =>
                    {
                        lock (done) done.Add(r);
                        task.Increment(1);
                    },
                }.RunAsync(plan, cancellationToken);
            });
        }
        catch (Exception e) when (cancellationToken.IsCancellationRequested && e is OperationCanceledException or Grpc.Core.RpcException)
        {
            List<ApplyRunner.Result> unsaid;
            int written;
            lock (done)
            {
                unsaid = [.. done.Where(r => !said.Contains(r)).OrderBy(r => plan.IndexOf(r.Change))];
                written = done.Count(r => r.Outcome is ApplyRunner.Outcome.Created or ApplyRunner.Outcome.Configured);
            }
            foreach (var r in unsaid) Line(r);
            terminal.Error.WriteLine($"interrupted: {written} of {plan.Count} object(s) written, as listed; the rest not applied (a write under way may have been made)");
            throw;
        }
        var counts = results.GroupBy(r => r.Outcome).ToDictionary(g => g.Key, g => g.Count());
        lines.WriteLine($"{counts.GetValueOrDefault(ApplyRunner.Outcome.Created)} created, {counts.GetValueOrDefault(ApplyRunner.Outcome.Configured)} configured, " +
            $"{counts.GetValueOrDefault(ApplyRunner.Outcome.Unchanged)} unchanged, {counts.GetValueOrDefault(ApplyRunner.Outcome.Failed)} failed" +
            (counts.GetValueOrDefault(ApplyRunner.Outcome.Unknown) is var unknown and > 0 ? $", {unknown} unknown" : ""));
        return results;
    }

    /// <summary>Prints each problem on its own line; true when there was any.</summary>
    public static bool Report(Terminal terminal, IReadOnlyList<ManifestProblem> problems)
    {
        // Grouped by file (in the order given), then by line, whichever check found them.
        var sources = problems.Select(p => p.Source).Distinct().ToList();
        foreach (var problem in problems.OrderBy(p => sources.IndexOf(p.Source)).ThenBy(p => p.Line)) terminal.Fail(problem.ToString());
        if (problems.Count > 0) terminal.Error.WriteLine($"{problems.Count} problem(s) found; nothing was changed");
        return problems.Count > 0;
    }
}
