namespace ControlPlane.Cli.Tests;

/// <summary>Exit codes, --help and --version, without a server where none is needed.</summary>
public sealed class ExitCodeTests
{
    [Theory]
    [InlineData("bogus")]
    [InlineData("get")]
    [InlineData("get", "pods")]
    [InlineData("apply")]
    [InlineData("apply", "-f", "x.yaml", "--dry-run=maybe")]
    [InlineData("get", "ep", "-o", "xml")]
    [InlineData("explain", "a/b", "c/d", "--port", "70000")]
    [InlineData("resolve", "web.shop.svc.cluster.local", "BOGUS")]
    [InlineData("get", "ep", "web-1")]
    [InlineData("delete", "sep", "shop/web")]
    [InlineData("delete", "svcim", "shop/web")]
    [InlineData("clusterset")]
    [InlineData("get", "ep", "--bogus")]
    [InlineData("get", "ep", "-n", "shop", "--bogus")]
    [InlineData("get", "ns", "--bogus=1")]
    [InlineData("delete", "ep", "-n", "shop", "-x")]
    [InlineData("--timeout", "0s", "get", "ns")]
    [InlineData("--timeout", "301s", "wait", "ep", "shop/web-1", "--for=programmed")]
    [InlineData("get", "ep", "shop/web-1", "-n", "default")]
    [InlineData("delete", "ep", "-n", "default", "shop/web-1")]
    [InlineData("describe", "ep", "shop/")]
    [InlineData("get", "ep", "/web-1")]
    public async Task Usage_WrongCommandLine_ExitsTwoWithAMessage(params string[] args)
    {
        var result = await Netctl.RunAsync(["--server", "127.0.0.1:1", .. args]);

        Assert.True(result.ExitCode == 2, result.ToString());
        Assert.NotEmpty(result.Errors);
        Assert.Empty(result.Output);
        var unknown = args.FirstOrDefault(a => a is "--bogus" or "--bogus=1" or "-x");
        if (unknown is not null) Assert.Contains($"Unrecognized option '{unknown}'", result.Errors[0]);
        if (args is ["bogus"]) Assert.Equal("error: Unrecognized command 'bogus'.", Assert.Single(result.Errors));
    }

    [Fact]
    public async Task Explain_WithPeersInTwoNamespaces_AndAnExplicitNamespace_IsNoUsageError()
    {
        // -n is for an unqualified peer; a qualified one may sit elsewhere. Only the server is missing.
        var result = await Netctl.RunAsync(["--server", "127.0.0.1:1", "explain", "shop/web-1", "db/pg-0", "-n", "shop", "--port", "5432"]);

        Assert.True(result.ExitCode == 1, result.ToString());
    }

    [Theory]
    [InlineData("--help")]
    [InlineData("apply", "--help")]
    [InlineData("get", "--help")]
    [InlineData("describe", "--help")]
    [InlineData("delete", "--help")]
    [InlineData("watch", "--help")]
    [InlineData("explain", "--help")]
    [InlineData("node", "status", "--help")]
    [InlineData("clusterset", "info", "--help")]
    [InlineData("resolve", "--help")]
    [InlineData("completion", "--help")]
    public async Task Help_EveryCommand_PrintsUsageAndExitsZero(params string[] args)
    {
        var result = await Netctl.RunAsync(args);

        Assert.True(result.ExitCode == 0, result.ToString());
        Assert.Contains("Usage:", result.Output);
    }

    /// <summary>An output format's default is shown as it is typed, like the choices (not "[default: Table]").</summary>
    [Theory]
    [InlineData("get", "--help")]
    [InlineData("watch", "--help")]
    [InlineData("explain", "--help")]
    [InlineData("node", "status", "--help")]
    [InlineData("clusterset", "info", "--help")]
    public async Task Help_OutputOption_ShowsItsDefaultAsTyped(params string[] args)
    {
        var result = await Netctl.RunAsync(args);

        var output = Assert.Single(result.OutputLines, l => l.TrimStart().StartsWith("-o, --output <table|", StringComparison.Ordinal));
        Assert.EndsWith("(default: table)", output);
        Assert.DoesNotContain("Table", result.Output, StringComparison.Ordinal);
    }

    /// <summary>
    /// wait's help names, per condition, the kinds it applies to, from the table its refusal
    /// reads: a kind the help lists gets past the usage checks (and fails only for want of a
    /// server, exit 1), every other kind is refused as usage (exit 2).
    /// </summary>
    [Fact]
    public async Task Wait_Help_ListsForEachConditionTheKindsItTakes_AsTheRefusalDoes()
    {
        var help = await Netctl.RunAsync(["wait", "--help"]);
        var kindLine = Assert.Single(help.OutputLines, l => l.TrimStart().StartsWith("<kind>", StringComparison.Ordinal));
        var forLine = Assert.Single(help.OutputLines, l => l.TrimStart().StartsWith("--for", StringComparison.Ordinal));
        string[] kinds = ["namespace", "network", "node", "clusterpeer", "endpoint", "service", "networkpolicy", "serviceendpoints", "serviceexport", "serviceimport"];

        foreach (var kind in kinds)
        {
            var listed = System.Text.RegularExpressions.Regex.IsMatch(kindLine, $@"\b{kind} \(");
            Assert.Equal(listed, System.Text.RegularExpressions.Regex.IsMatch(forLine, $@"[ ,]{kind}(,|$)"));
            var result = await Netctl.RunAsync(["--server", "127.0.0.1:1", "--timeout", "2s", "wait", kind, "x", "-n", "default", "--for=programmed"]);
            Assert.True(result.ExitCode == (listed ? 1 : 2), $"{kind}: {result}");
        }
        // Namespaces are programmed (their labels select policy peers); nodes are not.
        Assert.Contains("namespace (ns)", kindLine, StringComparison.Ordinal);
        Assert.DoesNotContain("node (", kindLine, StringComparison.Ordinal);
        Assert.Contains("programmed (", forLine, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Version_PrintsTheVersion()
    {
        var result = await Netctl.RunAsync(["--version"]);

        Assert.Equal(0, result.ExitCode);
        Assert.Matches(@"^\d+\.\d+\.\d+\n$", result.Output);
    }

    [Fact]
    public async Task Errors_UnreachableServerOrMissingFile_ExitOne()
    {
        var unreachable = await Netctl.RunAsync(["--server", "127.0.0.1:1", "get", "ns"]);
        Assert.Equal(1, unreachable.ExitCode);
        // What the connection met, not the gRPC client's "Error connecting to subchannel."
        Assert.Equal("error: server http://127.0.0.1:1 is unavailable: cannot connect: connection refused (nothing listens on that port)", Assert.Single(unreachable.Errors));

        var missing = await Netctl.RunAsync(["--server", "127.0.0.1:1", "apply", "-f", "/nonexistent/cliw.yaml"]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("/nonexistent/cliw.yaml: file: does not exist", Assert.Single(missing.Errors));
    }

    [Fact]
    public async Task Completion_BashScript_CompletesCommandsAndKinds()
    {
        var script = await Netctl.RunAsync(["completion", "bash"]);
        Assert.Equal(0, script.ExitCode);
        Assert.Contains("complete -o default -F _netctl_complete netctl", script.Output);

        // What the script asks netctl: the [suggest] directive with the line after the program name.
        var commands = await Netctl.RunAsync(["[suggest:2]", "ap"]);
        Assert.Equal(["apply"], commands.OutputLines);
        var kinds = await Netctl.RunAsync(["[suggest:7]", "get net"]);
        Assert.Equal(["network", "networkpolicy"], kinds.OutputLines);
    }

    /// <summary>
    /// The README's setup: netctl is an alias for dotnet and netctl.dll. Bash does not expand an
    /// alias inside the completion function, so the script runs netctl as it was run itself.
    /// </summary>
    [Fact]
    public async Task Completion_BashScript_CompletesThroughTheReadmesAlias()
    {
        var netctl = Path.Combine(AppContext.BaseDirectory, "netctl.dll");
        var script = string.Join('\n',
            "shopt -s expand_aliases",
            $"alias netctl=\"dotnet {netctl}\"",
            "source <(netctl completion bash)",
            "COMP_WORDS=(netctl ap); COMP_CWORD=1; COMP_LINE='netctl ap'; COMP_POINT=9",
            "_netctl_complete",
            "echo \"[${COMPREPLY[*]}]\"");
        var completed = await Netctl.RunProgramAsync("bash", ["-c", script]);
        Assert.True(completed.ExitCode == 0, completed.ToString());
        Assert.Equal(["[apply]"], completed.OutputLines);
    }
}
