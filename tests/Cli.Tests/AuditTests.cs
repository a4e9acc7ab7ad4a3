namespace ControlPlane.Cli.Tests;

/// <summary>netctl audit reading the audit log a real silo wrote.</summary>
public sealed class AuditTests
{
    [Fact]
    public async Task Audit_ShowsWhoWroteWhat_FiltersAndPrintsJson()
    {
        await using var silo = await Silo.StartAsync();
        await silo.Client.Namespaces.CreateAsync(new ControlPlane.Contracts.V1.Namespace { Metadata = new() { Name = "audited" } });
        Assert.Equal(1, (await Netctl.RunAsync(silo, "delete", "namespace", "no-such")).ExitCode);
        var log = Path.Combine(silo.DataDirectory, "audit.jsonl");

        var all = await Netctl.RunAsync(["audit", log]);
        Assert.True(all.ExitCode == 0, all.ToString());
        Assert.Matches(@"^TIME\s+CALLER\s+METHOD\s+KIND\s+OBJECT\s+OUTCOME\s+REVISION$", all.OutputLines[0]);
        Assert.Contains(all.OutputLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"127\.0\.0\.1\s+Create\s+Namespace\s+audited\s+OK\s+\d+"));
        Assert.Contains(all.OutputLines, l => System.Text.RegularExpressions.Regex.IsMatch(l, @"Delete\s+Namespace\s+no-such\s+NOT_FOUND"));

        var failed = await Netctl.RunAsync(["audit", log, "--failed", "--json"]);
        var line = Assert.Single(failed.OutputLines);
        Assert.Contains("\"outcome\":\"NOT_FOUND\"", line);

        var byName = await Netctl.RunAsync(["audit", log, "--kind", "namespace", "--name", "audited", "--method", "create"]);
        Assert.Equal(2, byName.OutputLines.Length);
        var missing = await Netctl.RunAsync(["audit", Path.Combine(silo.DataDirectory, "nope.jsonl")]);
        Assert.Equal(1, missing.ExitCode);

        // An apply that changes nothing sends no write: the log gets no line (as the README says).
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"))).ExitCode);
        var lines = File.ReadAllLines(log).Length;
        var unchanged = await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"));
        Assert.Equal(["namespace/shop unchanged"], unchanged.OutputLines);
        Assert.Equal(lines, File.ReadAllLines(log).Length);
    }

    /// <summary>
    /// --kind takes every kind the log records (the writable kinds, ClusterSet kinds included, by
    /// name or alias), and refuses any other as a usage error naming them; help lists the same.
    /// </summary>
    [Fact]
    public async Task Audit_KindFilter_TakesEveryAuditedKind_RefusesAnUnknownOneAsUsage_AndHelpListsThemAll()
    {
        string[] audited = ["Namespace", "Network", "Node", "ClusterPeer", "Endpoint", "Service", "NetworkPolicy", "ServiceExport"];
        using var dir = new TempDirectory();
        var log = dir.File("audit.jsonl", string.Join("\n", audited.Select((kind, i) =>
            $$"""{"time":"2026-12-05T06:00:{{i:00}}Z","caller":"127.0.0.1","role":"admin","authenticated":false,"peer":"ipv4:127.0.0.1:5000","method":"Create","kind":"{{kind}}","name":"x{{i}}","outcome":"OK","revision":"{{i + 1}}"}""")) + "\n");

        var bogus = await Netctl.RunAsync(["audit", log, "--kind", "Bogus"]);
        var serviceImport = await Netctl.RunAsync(["audit", log, "--kind", "svcim"]);
        var help = await Netctl.RunAsync(["audit", "--help"]);

        foreach (var refused in new[] { bogus, serviceImport })
        {
            Assert.True(refused.ExitCode == 2, refused.ToString());
            Assert.Empty(refused.Output);
            Assert.All(audited, kind => Assert.Contains(kind, Assert.Single(refused.Errors)));
        }
        var kindHelp = Assert.Single(help.OutputLines, l => l.TrimStart().StartsWith("--kind", StringComparison.Ordinal));
        Assert.All(audited, kind => Assert.Contains(kind, kindHelp));
        for (var i = 0; i < audited.Length; i++)
        {
            var shown = await Netctl.RunAsync(["audit", log, "--kind", i % 2 == 0 ? audited[i] : audited[i].ToLowerInvariant()]);
            Assert.True(shown.ExitCode == 0, shown.ToString());
            Assert.Matches($@"Create\s+{audited[i]}\s+x{i}\s+OK\s+{i + 1}$", Assert.Single(shown.OutputLines.Skip(1)));
        }
        var byAlias = await Netctl.RunAsync(["audit", log, "--kind", "svcex"]);
        Assert.Matches(@"Create\s+ServiceExport\s+x7\s+OK", Assert.Single(byAlias.OutputLines.Skip(1)));
    }

    /// <summary>
    /// A gap (writes a silo made while it could not append, see the silo's audit tests) is shown
    /// whatever the filters, and a line a full disk cut short is skipped and counted.
    /// </summary>
    [Fact]
    public async Task Audit_ShowsAGapWhateverTheFilters_AndSkipsATornLine()
    {
        var log = Path.Combine(Path.GetTempPath(), $"cp-audit-gap-{Guid.NewGuid():N}.jsonl");
        try
        {
            File.WriteAllLines(log,
            [
                """{"time":"2026-12-05T06:00:00Z","caller":"127.0.0.1","role":"admin","authenticated":false,"peer":"ipv4:127.0.0.1:5000","method":"Create","kind":"Namespace","name":"kept","outcome":"OK","revision":"7"}""",
                """{"time":"2026-12-05T06:00:01Z","caller":"127.0.0.1","role":"adm""",
                """{"time":"2026-12-05T06:00:09Z","event":"gap","since":"2026-12-05T06:00:01Z","error":"cannot append to the audit log: errno 28"}""",
                """{"time":"2026-12-05T06:00:10Z","caller":"127.0.0.1","role":"admin","authenticated":false,"peer":"ipv4:127.0.0.1:5000","method":"Create","kind":"Network","name":"other","outcome":"OK","revision":"9"}""",
            ]);
            var shown = await Netctl.RunAsync(["audit", log, "--kind", "namespace"]);
            Assert.True(shown.ExitCode == 0, shown.ToString());
            Assert.Equal(3, shown.OutputLines.Length);
            Assert.Matches(@"Create\s+Namespace\s+kept\s+OK\s+7$", shown.OutputLines[1]);
            Assert.Matches(@"^2026-12-05T06:00:09Z\s+-\s+-\s+-\s+writes since 2026-12-05T06:00:01Z unaudited: .*errno 28\s+GAP$", shown.OutputLines[2]);
            Assert.Contains("1 line(s)", shown.ToString());
        }
        finally
        {
            File.Delete(log);
        }
    }

    [Fact]
    public async Task Audit_ReadsTheFilesTheSiloRotatedOut_OldestFirst()
    {
        await using var silo = await Silo.StartAsync(settings: ["--Audit:MaxFileBytes=1500", "--Audit:MaxFiles=100"]);
        const int writes = 30;
        for (var i = 0; i < writes; i++)
        {
            await silo.Client.Namespaces.CreateAsync(new ControlPlane.Contracts.V1.Namespace { Metadata = new() { Name = $"rotated-{i}" } });
        }
        var log = Path.Combine(silo.DataDirectory, "audit.jsonl");
        var files = Directory.GetFiles(silo.DataDirectory, "audit.jsonl*");
        Assert.True(files.Length > 2, "the log did not rotate: " + string.Join(", ", files));
        Assert.All(files, f => Assert.True(new FileInfo(f).Length < 1500 + 400, $"{f} is {new FileInfo(f).Length} bytes"));

        var all = await Netctl.RunAsync(["audit", log, "--json"]);
        Assert.True(all.ExitCode == 0, all.ToString());
        Assert.Equal(Enumerable.Range(0, writes).Select(i => $"rotated-{i}"),
            all.OutputLines.Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement.GetProperty("name").GetString()));
        var last = await Netctl.RunAsync(["audit", log, "--last", "1", "--json"]);
        Assert.Contains("\"rotated-29\"", Assert.Single(last.OutputLines));
    }
}
