using System.Diagnostics;

namespace ControlPlane.Silo.Tests;

/// <summary>@grpc/grpc-js, a gRPC implementation we did not write, calling a real silo.</summary>
public sealed class InteropTests
{
    [Theory]
    [InlineData("unary")]
    [InlineData("errors")]
    [InlineData("streaming")]
    [InlineData("deadline")]
    public async Task GrpcJs_Scenario_Passes(string scenario)
    {
        await using var silo = await SiloInstance.StartAsync();
        var script = Path.Combine(RepositoryPaths.Root, "tests", "Interop", "interop.mjs");
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        info.ArgumentList.Add(script);
        info.ArgumentList.Add($"{silo.Address.Host}:{silo.Address.Port}");
        info.ArgumentList.Add(scenario);
        using var node = Process.Start(info)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));

        Assert.True(node.ExitCode == 0, $"grpc-js {scenario} failed:\n{await output}\n{await errors}");
        Assert.Contains($"{scenario}: ok", await output);
    }

    [Fact]
    public async Task GrpcJs_Limits_SeesResourceExhaustedWithRetryPushback()
    {
        await using var silo = await SiloInstance.StartAsync("--Limits:RequestsPerSecond=5", "--Limits:Burst=5");
        var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in new[] { Path.Combine(RepositoryPaths.Root, "tests", "Interop", "interop.mjs"), $"{silo.Address.Host}:{silo.Address.Port}", "limits" }) info.ArgumentList.Add(arg);
        using var node = Process.Start(info)!;
        var output = node.StandardOutput.ReadToEndAsync();
        var errors = node.StandardError.ReadToEndAsync();
        await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        Assert.True(node.ExitCode == 0, $"grpc-js limits failed:\n{await output}\n{await errors}");
    }
}
