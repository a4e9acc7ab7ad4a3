using System.Diagnostics;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Silo.Tests;

/// <summary>The node agent process registering its node and keeping its lease.</summary>
public sealed class NodeAgentLeaseTests
{
    [Fact]
    public async Task Agent_RegistersItsNodeAndKeepsItReady_UntilItIsKilled()
    {
        await using var silo = await SiloInstance.StartAsync("--ControlPlane:NodeLeaseDuration=00:00:03");
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Node } });
        // A killed agent leaves its attach socket: removed in the finally.
        var socket = Path.Combine(Path.GetTempPath(), $"cp-agent-{Guid.NewGuid():N}.sock");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.dll"), $"--Agent:ControlPlane={silo.Address}",
                     "--Agent:NodeName=agent-1", "--Agent:UnderlayIp=10.255.0.9",
                     // This agent runs in the test's own namespace: it must not change it.
                     "--Agent:EnableForwarding=false", "--Agent:ServiceProxy=false", "--Agent:NetworkPolicy=false", $"--Agent:AttachSocket={socket}"]) info.ArgumentList.Add(arg);
        using var agent = Process.Start(info)!;
        try
        {
            var registered = await watch.WaitForAsync(e => e.Node is { Metadata.Name: "agent-1", Status.Ready: true }, "the agent registers its node", 20_000);
            Assert.Equal("10.255.0.9", registered.Node.Spec.UnderlayIp);

            Assert.Equal(3u, (await silo.Client.HeartbeatAsync("agent-1")).LeaseSeconds);

            agent.Kill();
            await watch.WaitForAsync(e => e.Node is { Metadata.Name: "agent-1", Status.Ready: false }, "the node turns not ready once the agent is gone", 10_000);
        }
        finally
        {
            if (!agent.HasExited) agent.Kill();
            await agent.WaitForExitAsync();
            File.Delete(socket);
        }
    }

    /// <summary>
    /// An agent whose underlay address another node holds says exactly that (it used to log the
    /// control plane as unreachable), keeps retrying, and creates nothing.
    /// </summary>
    [Fact]
    public async Task Agent_WhoseUnderlayAddressIsTaken_SaysSo()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Nodes.CreateAsync(Fixtures.Node("holder", "10.255.0.19"));
        // A killed agent leaves its attach socket: removed in the finally.
        var socket = Path.Combine(Path.GetTempPath(), $"cp-agent-{Guid.NewGuid():N}.sock");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.dll"), $"--Agent:ControlPlane={silo.Address}",
                     "--Agent:NodeName=agent-2", "--Agent:UnderlayIp=10.255.0.19",
                     "--Agent:EnableForwarding=false", "--Agent:ServiceProxy=false", "--Agent:NetworkPolicy=false", $"--Agent:AttachSocket={socket}"]) info.ArgumentList.Add(arg);
        using var agent = Process.Start(info)!;
        var said = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var unreachable = 0;
        agent.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            if (e.Data.Contains("unreachable", StringComparison.Ordinal)) Interlocked.Increment(ref unreachable);
            if (e.Data.Contains("cannot register", StringComparison.Ordinal)) said.TrySetResult(e.Data);
        };
        agent.BeginOutputReadLine();
        try
        {
            var line = await said.Task.WaitAsync(TimeSpan.FromSeconds(20));
            Assert.Contains("Node agent-2 cannot register: its underlay address 10.255.0.19 belongs to another node", line);
            Assert.Equal(0, unreachable);
            await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => silo.Client.Nodes.GetAsync("", "agent-2"));
        }
        finally
        {
            if (!agent.HasExited) agent.Kill();
            await agent.WaitForExitAsync();
            File.Delete(socket);
        }
    }
}
