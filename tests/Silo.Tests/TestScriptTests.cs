using System.Diagnostics;
using System.Runtime.Versioning;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// scripts/test.sh checks the README's requirements before anything else. It runs here from a
/// copy, with a PATH holding only stand-ins for the tools (a dotnet stand-in answers
/// --list-sdks), so each case chooses exactly what is missing; as root, the not-root case runs
/// as nobody.
/// </summary>
[SupportedOSPlatform("linux")]
public sealed class TestScriptTests : IDisposable
{
    private const UnixFileMode Executable = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute |
        UnixFileMode.GroupRead | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute;
    private static readonly string[] Tools = ["ip", "bridge", "dig", "kdig", "nft", "ping", "getent", "node", "npm", "redis-server", "redis-cli", "psql", "curl", "prometheus", "podman", "runc", "clang", "unshare", "script"];
    private readonly DirectoryInfo _directory = Directory.CreateTempSubdirectory("parw-testsh-");

    public TestScriptTests()
    {
        // Readable by nobody too (temporary subdirectories are created private).
        File.SetUnixFileMode(_directory.FullName, Executable);
        Directory.CreateDirectory(Path.Combine(_directory.FullName, "scripts"));
        File.Copy(Path.Combine(RepositoryPaths.Root, "scripts", "test.sh"), Script);
    }

    private string Script => Path.Combine(_directory.FullName, "scripts", "test.sh");

    private static bool IsRoot => Environment.UserName == "root";

    public void Dispose() => _directory.Delete(recursive: true);

    [Fact]
    public async Task Check_WithEveryRequirement_Passes()
    {
        var (code, lines) = await RunAsync(Tools, sdk: "10.0.100", "--check");

        if (IsRoot)
        {
            Assert.Equal(0, code);
            Assert.Equal(["scripts/test.sh: every requirement is present"], lines);
        }
        else
        {
            Assert.Equal(2, code);
            Assert.Contains("missing root", Assert.Single(lines));
        }
    }

    [Fact]
    public async Task Run_WithToolsMissing_PrintsOneLineNamingEach_AndRunsNothing()
    {
        // Without --check: had it gone on, the stand-ins would have let it reach "dotnet test" and its totals line.
        var (code, lines) = await RunAsync(["ip", "bridge", "dig", "getent", "node", "npm"], sdk: "10.0.100");

        Assert.Equal(2, code);
        var line = Assert.Single(lines);
        Assert.StartsWith("scripts/test.sh: missing ", line);
        Assert.Contains("kdig (Debian package knot-dnsutils)", line);
        Assert.Contains("nft (Debian package nftables)", line);
        Assert.Contains("ping (Debian package iputils-ping)", line);
        Assert.Contains("prometheus (Debian package prometheus)", line);
        foreach (var present in new[] { " ip ", "bridge", " dig ", "getent", "node", "npm", ".NET" })
        {
            Assert.DoesNotContain(present, line);
        }
    }

    [Fact]
    public async Task Run_WithoutTheDotnet10Sdk_OrNodeJs_NamesThem()
    {
        var (code, lines) = await RunAsync(["ip", "bridge", "dig", "kdig", "nft", "ping", "getent"], sdk: "8.0.100");

        Assert.Equal(2, code);
        var line = Assert.Single(lines);
        Assert.Contains("the .NET 10 SDK", line);
        Assert.Contains("node (Debian package nodejs)", line);
        Assert.Contains("npm (Debian package npm)", line);
    }

    [Fact]
    public async Task Run_NotAsRoot_NamesRoot()
    {
        var (code, lines) = await RunAsync(Tools, sdk: "10.0.100", asNobody: IsRoot);

        Assert.Equal(2, code);
        Assert.StartsWith("scripts/test.sh: missing root (", Assert.Single(lines));
    }

    /// <summary>Runs the script with a PATH of stand-ins for <paramref name="tools"/> and a dotnet listing <paramref name="sdk"/>.</summary>
    private async Task<(int Code, string[] Lines)> RunAsync(string[] tools, string sdk, string? argument = null, bool asNobody = false)
    {
        var bin = Directory.CreateDirectory(Path.Combine(_directory.FullName, "bin-" + Guid.NewGuid().ToString("N"))).FullName;
        foreach (var tool in tools) WriteExecutable(Path.Combine(bin, tool), "exit 0");
        WriteExecutable(Path.Combine(bin, "dotnet"), $"echo '{sdk} [/usr/share/dotnet/sdk]'");
        var info = new ProcessStartInfo(asNobody ? "/usr/bin/setpriv" : "/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true };
        if (asNobody)
        {
            foreach (var arg in new[] { "--reuid=65534", "--regid=65534", "--clear-groups", "/bin/bash" }) info.ArgumentList.Add(arg);
        }
        info.ArgumentList.Add(Script);
        if (argument is not null) info.ArgumentList.Add(argument);
        info.Environment["PATH"] = bin;
        using var process = Process.Start(info)!;
        var (output, errors) = (process.StandardOutput.ReadToEndAsync(), process.StandardError.ReadToEndAsync());
        await process.WaitForExitAsync();
        var lines = ((await output) + (await errors)).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        return (process.ExitCode, lines);
    }

    private static void WriteExecutable(string path, string body)
    {
        File.WriteAllText(path, "#!/bin/sh\n" + body + "\n");
        File.SetUnixFileMode(path, Executable);
    }
}
