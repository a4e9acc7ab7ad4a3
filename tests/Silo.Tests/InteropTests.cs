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
    [InlineData("metadata")]
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

    /// <summary>grpc-js over mutual TLS: the handshake with our certificates, then the silo's answers per role.</summary>
    [Theory]
    [InlineData("tls-admin", "admin")]
    [InlineData("tls-reader", "reader")]
    [InlineData("tls-anonymous", null)]
    public async Task GrpcJs_OverMutualTls_Scenario_Passes(string scenario, string? role)
    {
        using var pki = ControlPlane.Tests.Shared.ClusterPki.Create();
        var data = Path.Combine(Path.GetTempPath(), "sc-interop-" + Guid.NewGuid().ToString("N"));
        var silo = await SiloProcess.StartAsync(data, pki);
        try
        {
            var info = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true };
            info.ArgumentList.Add(Path.Combine(RepositoryPaths.Root, "tests", "Interop", "interop.mjs"));
            info.ArgumentList.Add($"{silo.Address.Host}:{silo.Address.Port}");
            info.ArgumentList.Add(scenario);
            info.Environment["CP_CA"] = pki.CaPath;
            if (role is not null)
            {
                pki.Client("js-" + role, role);
                info.Environment["CP_CERT"] = pki.CertificatePath("js-" + role);
                info.Environment["CP_KEY"] = pki.KeyPath("js-" + role);
            }
            using var node = Process.Start(info)!;
            var output = node.StandardOutput.ReadToEndAsync();
            var errors = node.StandardError.ReadToEndAsync();
            await node.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
            Assert.True(node.ExitCode == 0, $"grpc-js {scenario} failed:\n{await output}\n{await errors}");
            Assert.Contains($"{scenario}: ok", await output);
        }
        finally
        {
            await silo.DisposeAsync();
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
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
