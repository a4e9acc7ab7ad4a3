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
