using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Cli.Tests;

/// <summary>Failover between silos, the configuration file and the environment.</summary>
public sealed class ConnectionTests
{
    [Fact]
    public async Task Server_FirstAddressDown_FailsOverToTheNext()
    {
        await using var silo = await Silo.StartAsync();
        var down = $"127.0.0.1:{ClosedPort()}";

        var apply = await Netctl.RunAsync(["--server", $"{down},{silo.Address}", "apply", "-f", RepositoryPaths.Example("01-namespace.yaml")]);

        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Equal(["namespace/shop created"], apply.OutputLines);
        Assert.Contains($"warning: server http://{down} is unavailable", apply.Error);
        var get = await Netctl.RunAsync(["--server", $"{down},{silo.Address}", "get", "ns", "-o", "name"]);
        Assert.Equal(["namespace/shop"], get.OutputLines);
    }

    /// <summary>
    /// A unix socket that cannot be reached is named in the error, with why: no socket at that path,
    /// or one nobody serves (the client's own message names only its stand-in authority, localhost:80).
    /// </summary>
    [Fact]
    public async Task Server_UnixSocketUnreachable_TheErrorNamesThePathAndWhy()
    {
        using var directory = new TempDirectory();
        var missing = Path.Combine(directory.Path, "missing.sock");
        var dead = Path.Combine(directory.Path, "dead.sock");
        // Bound and never listening: connections are refused (kept open, since disposing it removes the file).
        using var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        socket.Bind(new UnixDomainSocketEndPoint(dead));

        var none = await Netctl.RunAsync(["--server", $"unix:{missing}", "get", "ns"]);
        var refused = await Netctl.RunAsync(["--server", $"unix:{dead}", "get", "ns"]);

        Assert.Equal(1, none.ExitCode);
        Assert.Contains($"cannot connect to unix:{missing}: no such socket", Assert.Single(none.Errors), StringComparison.Ordinal);
        Assert.Equal(1, refused.ExitCode);
        Assert.Contains($"cannot connect to unix:{dead}: Connection refused", Assert.Single(refused.Errors), StringComparison.Ordinal);
    }

    /// <summary>
    /// A first server that takes connections and never answers holds a call until its deadline;
    /// the error says the deadline passed there, not that every server is unavailable.
    /// </summary>
    [Fact]
    public async Task Server_FirstHangsPastTheDeadline_TheErrorSaysSo()
    {
        await using var silo = await Silo.StartAsync();
        using var hung = new TcpListener(IPAddress.Loopback, 0);
        hung.Start();   // the kernel completes connections; nothing ever reads or answers them
        var servers = $"127.0.0.1:{((IPEndPoint)hung.LocalEndpoint).Port},{silo.Address}";

        var timedOut = await Netctl.RunAsync(["--server", servers, "--timeout", "2s", "get", "ns"]);
        Assert.Equal(1, timedOut.ExitCode);
        var error = Assert.Single(timedOut.Errors);
        Assert.Contains("did not answer within the call's deadline", error, StringComparison.Ordinal);
        Assert.Contains("the call's deadline (--timeout 2s) passed before it could move on to the next server", error, StringComparison.Ordinal);
        Assert.DoesNotContain("no server is available", error, StringComparison.Ordinal);

        // The hung server alone: a deadline, not an unavailable server.
        var alone = await Netctl.RunAsync(["--server", servers.Split(',')[0], "--timeout", "1s", "get", "ns"]);
        Assert.Equal(1, alone.ExitCode);
        var late = Assert.Single(alone.Errors);
        Assert.Contains("did not answer within the call's deadline (--timeout 1s)", late, StringComparison.Ordinal);
        Assert.DoesNotContain("unavailable", late, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Configuration_FileAndEnvironment_NameTheServersAndFlagsWin()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        using var dir = new TempDirectory();
        var down = $"127.0.0.1:{ClosedPort()}";
        var config = dir.File("config.yaml", $"server: [{down}, {silo.Address}]\nnamespace: shop\ntimeout: 10s\n");

        var fromFile = await Netctl.RunAsync(["--config", config, "get", "ep", "web-1", "-o", "name"]);
        Assert.True(fromFile.ExitCode == 0, fromFile.ToString());
        Assert.Equal(["endpoint/shop/web-1"], fromFile.OutputLines);

        // The default file: $XDG_CONFIG_HOME/netctl/config.yaml.
        dir.File("xdg/netctl/config.yaml", $"server: {silo.Address}\n");
        var fromDefault = await Netctl.RunAsync(["get", "ns", "-o", "name"], environment: new Dictionary<string, string> { ["XDG_CONFIG_HOME"] = Path.Combine(dir.Path, "xdg") });
        Assert.Equal(["namespace/shop"], fromDefault.OutputLines);

        var fromEnvironment = await Netctl.RunAsync(["get", "ep", "-o", "name"],
            environment: new Dictionary<string, string> { ["NETCTL_SERVER"] = silo.Address, ["NETCTL_NAMESPACE"] = "shop" });
        Assert.Equal(3, fromEnvironment.OutputLines.Length);

        var flagWins = await Netctl.RunAsync(["--server", $"127.0.0.1:{ClosedPort()}", "--config", config, "get", "ns"]);
        Assert.Equal(1, flagWins.ExitCode);

        var badFile = dir.File("bad.yaml", "servers: x\n");
        var bad = await Netctl.RunAsync(["--config", badFile, "get", "ns"]);
        Assert.Equal(1, bad.ExitCode);
        Assert.Contains("unknown setting 'servers'", Assert.Single(bad.Errors));
    }

    /// <summary>
    /// A bad configuration file is one kind of error, exit 1 (not the command line's usage, 2),
    /// whatever is wrong in it, and says where the value came from: the file and line, or the
    /// variable. A duration needs a unit in every place (.NET would read a bare 10 as ten days);
    /// on the command line a bad --timeout stays a usage error.
    /// </summary>
    [Fact]
    public async Task Configuration_BadValues_AreOneErrorNamingTheirSource_AndABareNumberIsNoDuration()
    {
        using var dir = new TempDirectory();
        var unknown = dir.File("unknown.yaml", "namespace: shop\nservers: x\n");
        var badTimeout = dir.File("timeout.yaml", "namespace: shop\ntimeout: 10q\n");
        var bareTimeout = dir.File("bare.yaml", "server: 127.0.0.1:1\ntimeout: 10\n");
        string[] get = ["get", "ns"];

        var results = new[]
        {
            (await Netctl.RunAsync(["--config", unknown, .. get]), $"error: {unknown}: line 2: unknown setting 'servers'"),
            (await Netctl.RunAsync(["--config", badTimeout, .. get]), $"error: {badTimeout}: line 2: timeout '10q' is not a duration"),
            (await Netctl.RunAsync(["--config", bareTimeout, .. get]), $"error: {bareTimeout}: line 2: timeout '10' is a bare number"),
            (await Netctl.RunAsync(["--server", "127.0.0.1:1", .. get], environment: new Dictionary<string, string> { ["NETCTL_TIMEOUT"] = "abc" }), "error: NETCTL_TIMEOUT=abc: 'abc' is not a duration"),
            (await Netctl.RunAsync(["--server", "127.0.0.1:1", .. get], environment: new Dictionary<string, string> { ["NETCTL_TIMEOUT"] = "10" }), "error: NETCTL_TIMEOUT=10: '10' is a bare number"),
        };
        foreach (var (result, error) in results)
        {
            Assert.True(result.ExitCode == 1, result.ToString());
            Assert.StartsWith(error, Assert.Single(result.Errors));
        }
        // Every problem of a file at once, in its order.
        var twoProblems = dir.File("two.yaml", "namespace: shop\ntimeout: 10x\nfoo: bar\n");
        var both = await Netctl.RunAsync(["--config", twoProblems, .. get]);
        Assert.True(both.ExitCode == 1, both.ToString());
        Assert.Equal($"error: {twoProblems}: line 2: timeout '10x' is not a duration longer than zero (e.g. 30s, 500ms, 2m)\n"
            + $"{twoProblems}: line 3: unknown setting 'foo' (known: server, dns, namespace, timeout, ca, cert, key)", both.Error.Trim());
        var flag = await Netctl.RunAsync(["--server", "127.0.0.1:1", "--timeout", "10", .. get]);
        Assert.True(flag.ExitCode == 2, flag.ToString());
        Assert.StartsWith("error: --timeout '10' is a bare number", Assert.Single(flag.Errors));
    }

    /// <summary>
    /// A silo's rate limit refuses calls RESOURCE_EXHAUSTED with a retry pushback before running
    /// them: netctl waits each pause and makes the call again, so an apply of the examples at two
    /// calls a second (burst 3) writes every object, each once, although the silo refused writes
    /// on the way (its audit log has them).
    /// </summary>
    [Fact]
    public async Task RateLimited_ApplyWaitsEachPushback_AndWritesEveryObjectOnce()
    {
        await using var silo = await Silo.StartAsync(0, null, "--Limits:RequestsPerSecond=2", "--Limits:Burst=3");

        var apply = await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples);

        Assert.True(apply.ExitCode == 0, apply.ToString());
        Assert.Equal(9, apply.OutputLines.Count(l => l.EndsWith(" created", StringComparison.Ordinal)));
        Assert.Empty(apply.Errors);
        var audit = File.ReadAllLines(Path.Combine(silo.DataDirectory, "audit.jsonl")).Select(l => System.Text.Json.Nodes.JsonNode.Parse(l)!).ToList();
        Assert.Contains(audit, l => (string?)l["method"] == "Create" && (string?)l["outcome"] == "RESOURCE_EXHAUSTED");
        // Each object created once: nine successful creates, and nothing refused as already there.
        Assert.Equal(9, audit.Count(l => (string?)l["method"] == "Create" && (string?)l["outcome"] == "OK"));
        Assert.DoesNotContain(audit, l => (string?)l["outcome"] == "ALREADY_EXISTS");
    }

    /// <summary>
    /// A pause that would end past the call's deadline (--timeout) is not waited: the refusal is the
    /// error, at once, saying why it was not retried.
    /// </summary>
    [Fact]
    public async Task RateLimited_PushbackPastTheTimeout_IsNotWaited()
    {
        // One call every 10 s: the test's own call (the same client, 127.0.0.1) takes the token.
        await using var silo = await Silo.StartAsync(0, null, "--Limits:RequestsPerSecond=0.1", "--Limits:Burst=1");
        await silo.Client.Namespaces.ListAsync(new Contracts.V1.ListRequest());

        var clock = System.Diagnostics.Stopwatch.StartNew();
        var refused = await Netctl.RunAsync(silo, "--timeout", "2s", "get", "ns");

        Assert.Equal(1, refused.ExitCode);
        var error = Assert.Single(refused.Errors);
        Assert.StartsWith("error: RESOURCE_EXHAUSTED: client peer:127.0.0.1 exceeded Limits:RequestsPerSecond", error);
        Assert.EndsWith("; not retried: the call's deadline (--timeout) comes first", error);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(8), $"netctl waited {clock.Elapsed} for a pause past its deadline");
    }

    /// <summary>A TCP port on which nothing listens (bound, then released).</summary>
    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
