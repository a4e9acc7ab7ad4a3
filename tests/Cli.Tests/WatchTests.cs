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
    }
}
