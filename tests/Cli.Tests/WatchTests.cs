using System.Text.Json.Nodes;

namespace ControlPlane.Cli.Tests;

/// <summary>netctl watch, read line by line while other netctl commands change the objects.</summary>
public sealed class WatchTests
{
    [Fact]
    public async Task Watch_Json_StreamsTheListThenEveryChange()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        using var watch = Netctl.Stream(["--server", silo.Address, "watch", "endpoints", "-n", "shop", "-o", "json"]);

        var initial = new List<string>();
        for (var line = await watch.ReadLineAsync(); !line.Contains("\"BOOKMARK\"", StringComparison.Ordinal); line = await watch.ReadLineAsync())
        {
            var e = JsonNode.Parse(line)!;
            Assert.Equal("ADDED", (string?)e["type"]);
            initial.Add((string)e["object"]!["metadata"]!["name"]!);
        }
        Assert.Equal(["client", "web-1", "web-2"], initial.Order());

        var relabel = File.ReadAllText(RepositoryPaths.Example("04-endpoints.yaml")).Replace("app: client", "app: client\n    stage: canary", StringComparison.Ordinal);
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: relabel)).ExitCode);
        var modified = JsonNode.Parse(await watch.ReadLineAsync())!;
        Assert.Equal("MODIFIED", (string?)modified["type"]);
        Assert.Equal("canary", (string?)modified["object"]!["metadata"]!["labels"]!["stage"]);

        Assert.Equal(0, (await Netctl.RunAsync(silo, "delete", "ep", "shop/client")).ExitCode);
        var deleted = JsonNode.Parse(await watch.ReadLineAsync())!;
        Assert.Equal(("DELETED", "client"), ((string?)deleted["type"], (string?)deleted["object"]!["metadata"]!["name"]));

        // One object, named as get -o name prints it; watch follows one kind.
        using var one = Netctl.Stream(["--server", silo.Address, "watch", "endpoint/shop/web-1", "-o", "json"]);
        var first = JsonNode.Parse(await one.ReadLineAsync())!;
        Assert.Equal(("ADDED", "web-1"), ((string?)first["type"], (string?)first["object"]!["metadata"]!["name"]));
        Assert.Contains("\"BOOKMARK\"", await one.ReadLineAsync(), StringComparison.Ordinal);
        var two = await Netctl.RunAsync(silo, "watch", "ep/shop/web-1", "svc/shop/web");
        Assert.Equal(2, two.ExitCode);
        Assert.Contains("watch follows one object or one kind", Assert.Single(two.Errors), StringComparison.Ordinal);
    }

    /// <summary>
    /// `netctl watch … | head -1`: once head has gone, the watch's next line finds no reader and
    /// netctl ends (quietly, 141 as for SIGPIPE) instead of watching on for nobody.
    /// </summary>
    [Fact]
    public async Task Watch_IntoAPipeWhoseReaderLeft_EndsAtItsNextLine()
    {
        await using var silo = await Silo.StartAsync();
        using var directory = new TempDirectory();
        var manifest = directory.File("ns.yaml", "apiVersion: controlplane/v1\nkind: Namespace\nmetadata:\n  name: piped\n");
        var netctl = Path.Combine(AppContext.BaseDirectory, "netctl.dll");
        // The change comes after head has exited (and the group gave up the pipe too); the pipeline
        // ends only when the watch does.
        var script = $"dotnet '{netctl}' --server {silo.Address} watch namespaces -o json | {{ head -1 >/dev/null; exec 0<&-; dotnet '{netctl}' --server {silo.Address} apply -f '{manifest}' >&2; }}; echo \"watch ${{PIPESTATUS[0]}}\"";
        var run = await Netctl.RunProgramAsync("bash", ["-c", script]);
        Assert.True(run.ExitCode == 0, run.ToString());
        Assert.Equal("watch 141", run.Output.Trim());
        Assert.Contains("namespace/piped created", run.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("error", run.Error, StringComparison.Ordinal);

        // Output into a file goes on where the file's last writer stopped, not over it.
        var file = Path.Combine(directory.Path, "out.txt");
        var appended = await Netctl.RunProgramAsync("bash", ["-c", $"{{ dotnet '{netctl}' --version; dotnet '{netctl}' --version; }} > '{file}'; dotnet '{netctl}' --version >> '{file}'"]);
        Assert.True(appended.ExitCode == 0, appended.ToString());
        Assert.Equal(3, File.ReadAllLines(file).Length);
    }

    [Fact]
    public async Task Watch_TableWithSelector_PrintsOnlyMatchingRows()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        using var watch = Netctl.Stream(["--server", silo.Address, "watch", "ep", "-A", "-l", "app=web"]);

        Assert.Equal(["EVENT", "NAMESPACE", "NAME", "NETWORK", "NODE", "READY", "IPS", "AGE"], (await watch.ReadLineAsync()).Split(' ', StringSplitOptions.RemoveEmptyEntries));
        var rows = new[] { await watch.ReadLineAsync(), await watch.ReadLineAsync() };
        Assert.All(rows, r => Assert.StartsWith("ADDED", r));
        Assert.Equal(["web-1", "web-2"], rows.Select(r => r.Split(' ', StringSplitOptions.RemoveEmptyEntries)[2]).Order());

        // A change to a non-matching endpoint prints nothing; the next matching one does.
        Assert.Equal(0, (await Netctl.RunAsync(silo, "delete", "ep", "shop/client")).ExitCode);
        Assert.Equal(0, (await Netctl.RunAsync(silo, "delete", "ep", "shop/web-2")).ExitCode);
        var next = (await watch.ReadLineAsync()).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(("DELETED", "web-2"), (next[0], next[2]));

        // Relabelled out of the selection, the endpoint leaves the view; relabelled back, it returns.
        var endpoints = File.ReadAllText(RepositoryPaths.Example("04-endpoints.yaml"));
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: endpoints.Replace("app: web", "app: old", StringComparison.Ordinal))).ExitCode);
        var left = (await watch.ReadLineAsync()).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(("DELETED", "web-1"), (left[0], left[2]));
        // (web-2, deleted above, came back as app=old: it enters the selection now too.)
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: endpoints)).ExitCode);
        var back = new[] { await watch.ReadLineAsync(), await watch.ReadLineAsync() }.Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        Assert.Equal([("ADDED", "web-1"), ("ADDED", "web-2")], back.Select(b => (b[0], b[2])).Order());
    }

    /// <summary>
    /// A watch's table lines up as get's does: the columns fit the initial list (dual-stack
    /// addresses, a second cluster IP), and a later row with a wider value comes under the header
    /// printed again with that column widened, every row's cells starting where its header's do.
    /// </summary>
    [Fact]
    public async Task Watch_Table_ColumnsFitTheListAndWidenUnderANewHeader()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        using var endpoints = Netctl.Stream(["--server", silo.Address, "watch", "endpoints", "-n", "shop"]);
        using var services = Netctl.Stream(["--server", silo.Address, "watch", "svc", "-A", "-o", "wide"]);

        var header = await endpoints.ReadLineAsync();
        Assert.Equal(["EVENT", "NAME", "NETWORK", "NODE", "READY", "IPS", "AGE"], Words(header));
        for (var i = 0; i < 3; i++) AssertUnder(header, await endpoints.ReadLineAsync());
        var serviceHeader = await services.ReadLineAsync();
        Assert.Equal(["EVENT", "NAMESPACE", "NAME", "TYPE", "NETWORK", "CLUSTER-IPS", "PORTS", "SELECTOR", "EXTERNAL-NAME", "AGE"], Words(serviceHeader));
        var web = await services.ReadLineAsync();
        AssertUnder(serviceHeader, web);
        Assert.Contains(",fd00:96::", web);

        // A longer name than any listed: the header again, wider, and the row under it.
        var longer = "apiVersion: controlplane/v1\nkind: Endpoint\nmetadata: {namespace: shop, name: a-much-longer-endpoint-name, labels: {app: web}}\nspec: {network: blue, node: node-1}\n";
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: longer)).ExitCode);
        var widened = await endpoints.ReadLineAsync();
        Assert.Equal(Words(header), Words(widened));
        Assert.True(widened.IndexOf("NETWORK", StringComparison.Ordinal) > header.IndexOf("NETWORK", StringComparison.Ordinal), widened);
        var added = await endpoints.ReadLineAsync();
        Assert.StartsWith("ADDED", added);
        AssertUnder(widened, added);
        // What fits is printed under the header as it is: no header again.
        Assert.Equal(0, (await Netctl.RunAsync(silo, "delete", "ep", "shop/client")).ExitCode);
        var deleted = await endpoints.ReadUntilAsync(l => l.StartsWith("DELETED", StringComparison.Ordinal));
        AssertUnder(widened, deleted);
    }

    private static string[] Words(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Each cell of <paramref name="row"/> starts in the column where its header does.</summary>
    private static void AssertUnder(string header, string row)
    {
        static List<int> Starts(string line) => [.. Enumerable.Range(0, line.Length).Where(i => line[i] != ' ' && (i == 0 || line[i - 1] == ' '))];
        Assert.True(Starts(header).SequenceEqual(Starts(row)), $"not under its header:\n{header}\n{row}");
    }

    [Fact]
    public async Task Watch_SiloRestarts_ResumesFromItsTokenAndCtrlCExits130()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        using var watch = Netctl.Stream(["--server", silo.Address, "watch", "ns", "-o", "json"]);
        await watch.ReadUntilAsync(l => l.Contains("\"BOOKMARK\"", StringComparison.Ordinal));

        await silo.RestartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: "apiVersion: controlplane/v1\nkind: Namespace\nmetadata:\n  name: after\n")).ExitCode);
        // Resumed from its token: the next line is the change made after the restart, not the list again.
        var e = JsonNode.Parse(await watch.ReadLineAsync(TimeSpan.FromSeconds(60)))!;
        Assert.Equal(("ADDED", "after"), ((string?)e["type"], (string?)e["object"]!["metadata"]!["name"]));

        Assert.Equal(130, await watch.SignalAsync("INT"));
        // The stop ended the stream (or, if the connection went first, broke it): either way the
        // watch said so rather than waiting silently.
        Assert.True(watch.Error.Contains("ended the watch (it is shutting down); resuming from the last event", StringComparison.Ordinal)
            || watch.Error.Contains("retrying until a server answers", StringComparison.Ordinal), watch.Error);
    }

    /// <summary>
    /// A watched silo killed mid-stream: netctl says it moves on from that server (not that no server
    /// is available, which it does not know yet) and resumes from its token on the next one.
    /// </summary>
    [Fact]
    public async Task Watch_WatchedSiloKilled_SaysItsConnectionBroke_AndResumesOnTheNextServer()
    {
        await using var silo = await Silo.StartAsync();
        var next = Silo.FreePort(26000);
        using var watch = Netctl.Stream(["--server", $"{silo.Address},127.0.0.1:{next}", "watch", "ns", "-o", "json"]);
        await watch.ReadUntilAsync(l => l.Contains("\"BOOKMARK\"", StringComparison.Ordinal));

        await silo.KillAsync();
        var elsewhere = await silo.StartAgainAtAsync(next);
        Assert.Equal(0, (await Netctl.RunAsync(["--server", elsewhere, "apply", "-f", "-"], stdin: "apiVersion: controlplane/v1\nkind: Namespace\nmetadata: {name: after-kill}\n")).ExitCode);
        var e = JsonNode.Parse(await watch.ReadLineAsync(TimeSpan.FromSeconds(60)))!;
        Assert.Equal(("ADDED", "after-kill"), ((string?)e["type"], (string?)e["object"]!["metadata"]!["name"]));

        Assert.Equal(130, await watch.SignalAsync("INT"));
        var warnings = watch.Error.Split('\n').Where(l => l.StartsWith("warning: ", StringComparison.Ordinal)).ToArray();
        Assert.True(warnings[0].StartsWith($"warning: server {silo.Address} is unavailable (", StringComparison.Ordinal) && warnings[0].EndsWith(")", StringComparison.Ordinal), watch.Error);
        // Until the next server was tried, no line may claim that none is available.
        var tried = Array.FindIndex(warnings, l => l.StartsWith($"warning: server http://127.0.0.1:{next} is unavailable", StringComparison.Ordinal));
        Assert.DoesNotContain(warnings[..(tried < 0 ? warnings.Length : tried)], l => l.Contains("no server is available", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Watch_PositionCompactedWhileAway_ListsAgainAndShowsWhatChanged()
    {
        await using var silo = await Silo.StartAsync(0, null, "--Store:Partitions=1", "--Store:ChangeLogRetention=1", "--Store:CompactionInterval=00:00:00.2");
        const string Namespaces = "apiVersion: controlplane/v1\nkind: Namespace\nmetadata: {name: kept}\n---\napiVersion: controlplane/v1\nkind: Namespace\nmetadata: {name: gone}\n---\napiVersion: controlplane/v1\nkind: Namespace\nmetadata: {name: changed}\n";
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Namespaces)).ExitCode);
        using var watch = Netctl.Stream(["--server", silo.Address, "watch", "ns", "-o", "json"]);
        await watch.ReadUntilAsync(l => l.Contains("\"BOOKMARK\"", StringComparison.Ordinal));
        var position = await PositionAsync(silo.Client);

        // While the watch cannot reach the silo: one namespace deleted, one relabelled, one created,
        // and the change log compacted past the watch's position.
        var elsewhere = await silo.RestartElsewhereAsync();
        Assert.Equal(0, (await Netctl.RunAsync(["--server", elsewhere, "delete", "ns", "gone"])).ExitCode);
        Assert.Equal(0, (await Netctl.RunAsync(["--server", elsewhere, "apply", "-f", "-"], stdin: "apiVersion: controlplane/v1\nkind: Namespace\nmetadata: {name: changed, labels: {tier: new}}\n")).ExitCode);
        Assert.Equal(0, (await Netctl.RunAsync(["--server", elsewhere, "apply", "-f", "-"], stdin: "apiVersion: controlplane/v1\nkind: Namespace\nmetadata: {name: added}\n")).ExitCode);
        using (var client = new ControlPlane.Contracts.Client.ControlPlaneClient(elsewhere))
        {
            await CompactedAsync(client, position);
        }
        await silo.RestartAsync();

        // Listed again: what changed is shown as events, what did not is not shown again.
        var events = new List<(string Type, string Name)>();
        while (events.Count < 3)
        {
            var e = JsonNode.Parse(await watch.ReadLineAsync(TimeSpan.FromSeconds(60)))!;
            events.Add(((string)e["type"]!, (string)e["object"]!["metadata"]!["name"]!));
        }
        Assert.Equal([("ADDED", "added"), ("DELETED", "gone"), ("MODIFIED", "changed")], events.Order());
        // Live again: the next line is the next change.
        Assert.Equal(0, (await Netctl.RunAsync(silo, "delete", "ns", "kept")).ExitCode);
        var next = JsonNode.Parse(await watch.ReadLineAsync(TimeSpan.FromSeconds(30)))!;
        Assert.Equal(("DELETED", "kept"), ((string?)next["type"], (string?)next["object"]!["metadata"]!["name"]));
        Assert.Equal(130, await watch.SignalAsync("INT"));
        // Why it lists again, in the server's words; and nothing after it says the silo ended the
        // watch (it did not: that warning, and a move to another server, followed every relist).
        var relist = watch.Error.IndexOf("listing again", StringComparison.Ordinal);
        Assert.True(relist > 0, watch.Error);
        Assert.Contains("the watch cannot resume (resume_token: revision ", watch.Error, StringComparison.Ordinal);
        Assert.Contains("is older than the retained change log", watch.Error, StringComparison.Ordinal);
        Assert.DoesNotContain("ended the watch", watch.Error[relist..], StringComparison.Ordinal);
    }

    /// <summary>The resume token of the end of a fresh list: where a watch synced now stands.</summary>
    private static async Task<string> PositionAsync(ControlPlane.Contracts.Client.ControlPlaneClient client)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in client.WatchAsync(new ControlPlane.Contracts.V1.WatchRequest(), cancellationToken: cancel.Token))
        {
            if (e.InitialEventsEnd) return e.ResumeToken;
        }
        throw new InvalidOperationException("the watch ended before its list did");
    }

    /// <summary>Waits until a watch from <paramref name="position"/> is refused as compacted (the silo compacts on a timer).</summary>
    private static async Task CompactedAsync(ControlPlane.Contracts.Client.ControlPlaneClient client, string position)
    {
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(1));
            try
            {
                await foreach (var _ in client.WatchAsync(new ControlPlane.Contracts.V1.WatchRequest { ResumeToken = position }, cancellationToken: cancel.Token)) { }
            }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.OutOfRange)
            {
                return;
            }
            catch (Grpc.Core.RpcException) when (cancel.IsCancellationRequested && DateTime.UtcNow < deadline)
            {
            }
            catch (OperationCanceledException) when (DateTime.UtcNow < deadline)
            {
            }
        }
    }
}
