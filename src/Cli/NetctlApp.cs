using System.CommandLine;
using System.CommandLine.Help;
using ControlPlane.Cli.Commands;
using ControlPlane.Cli.Connection;
using ControlPlane.Cli.Output;
using Grpc.Core;

namespace ControlPlane.Cli;

/// <summary>The command tree and the one place that turns failures into messages and exit codes.</summary>
internal static class NetctlApp
{
    /// <summary>netctl's activity source: one client span per run (see Program).</summary>
    public static readonly System.Diagnostics.ActivitySource Tracing = new("ControlPlane.Cli");

    public static RootCommand Build(Terminal terminal)
    {
        var global = new GlobalOptions();
        var root = new RootCommand("""
            netctl: the ControlPlane command-line tool. Applies manifests, shows and watches objects,
            waits until changes are programmed on every node, explains network policy decisions,
            reports node status and the ClusterSet, and queries the cluster DNS.

            Exit codes: 0 success, 1 error, 2 usage, 130 and 143 stopped by Ctrl+C or SIGTERM, 141 the reader of the output went away (| head).
            """)
        {
            ApplyCommand.Create(global, terminal),
            GetCommand.Create(global, terminal),
            DescribeCommand.Create(global, terminal),
            DeleteCommand.Create(global, terminal),
            WatchCommand.Create(global, terminal),
            WaitCommand.Create(global, terminal),
            ExplainCommand.Create(global, terminal),
            NodeCommand.Create(global, terminal),
            ClusterSetCommand.Create(global, terminal),
            ResolveCommand.Create(global, terminal),
            PkiCommand.Create(terminal),
            AuditCommand.Create(terminal),
            CompletionCommand.Create(),
        };
        global.AddTo(root);
        return root;
    }

    public static async Task<int> RunAsync(string[] args, Terminal terminal)
    {
        var root = Build(terminal);
        var parse = root.Parse(args);
        var answersItself = parse.Action is HelpAction || parse.Tokens.Any(t => t.Value is "--version" or "--help" or "-h" or "-?")
            || args.Any(a => a.StartsWith("[suggest", StringComparison.Ordinal));
        // An unknown option after a command lands in its name arguments (no name begins with '-').
        var strayOptions = parse.CommandResult.Children.OfType<System.CommandLine.Parsing.ArgumentResult>()
            .SelectMany(a => a.Tokens).Where(t => t.Value.Length > 1 && t.Value[0] == '-').Select(t => $"Unrecognized option '{t.Value}'.").ToList();
        if ((parse.Errors.Count > 0 || strayOptions.Count > 0) && !answersItself)
        {
            // An unknown first word is one mistake: say that alone, not also that a command is missing.
            IEnumerable<string> errors = parse.CommandResult.Command == root && parse.UnmatchedTokens.Count > 0 && parse.UnmatchedTokens[0] is var first && first[0] != '-'
                ? [$"Unrecognized command '{first}'."]
                : parse.Errors.Select(e => e.Message).Concat(strayOptions);
            foreach (var error in errors) terminal.Fail(error);
            var command = parse.CommandResult.Command;
            var path = command == root ? "netctl" : "netctl " + string.Join(" ", Ancestry(command));
            terminal.Error.WriteLine($"Run '{path} --help' for usage.");
            return ExitCodes.Usage;
        }
        // With OTLP configured (Program), the run is one client span named after its command.
        using var activity = parse.CommandResult.Command == root ? null
            : Tracing.StartActivity("netctl " + string.Join(" ", Ancestry(parse.CommandResult.Command)), System.Diagnostics.ActivityKind.Client);
        Interrupts.Handle();
        try
        {
            return await parse.InvokeAsync(
                new InvocationConfiguration { EnableDefaultExceptionHandler = false, Output = terminal.Out, Error = terminal.Error, ProcessTerminationTimeout = null },
                Interrupts.Token);
        }
        catch (Exception e) when (Terminal.IsBrokenPipe(e))
        {
            // The reader of standard output went away: end quietly, as a program killed by SIGPIPE does.
            return ExitCodes.BrokenPipe;
        }
        catch (CliException e)
        {
            terminal.Fail(e.Message);
            return e.ExitCode;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled && Interrupts.Token.IsCancellationRequested)
        {
            // A call the signal cancelled (Grpc.Net.Client reports it as CANCELLED): no error to show.
            return Interrupts.ExitCode(ExitCodes.Error);
        }
        catch (RpcException e)
        {
            terminal.Fail(StatusNames.Describe(e));
            return ExitCodes.Error;
        }
        catch (OperationCanceledException)
        {
            return Interrupts.ExitCode(ExitCodes.Error);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or InvalidOperationException)
        {
            terminal.Fail(e.Message);
            return ExitCodes.Error;
        }
    }

    private static IEnumerable<string> Ancestry(Command command)
    {
        var names = new List<string>();
        for (var symbol = (Symbol?)command; symbol is Command c && symbol is not RootCommand; symbol = c.Parents.FirstOrDefault())
        {
            names.Insert(0, c.Name);
        }
        return names;
    }
}
