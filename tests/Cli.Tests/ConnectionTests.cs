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

    /// <summary>A TCP port on which nothing listens (bound, then released).</summary>
    internal static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
