using System.Diagnostics;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Silo.Tests;

/// <summary>The node agent process registering its node and keeping its lease.</summary>
public sealed class NodeAgentLeaseTests
{
    /// <summary>An agent process for <paramref name="node"/>, with an attach socket of its own.</summary>
    private static (Process Agent, string Socket) StartAgent(SiloInstance silo, string node, string underlay)
    {
        var socket = Path.Combine(Path.GetTempPath(), $"cp-agent-{Guid.NewGuid():N}.sock");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.dll"), $"--Agent:ControlPlane={silo.Address}",
                     $"--Agent:NodeName={node}", $"--Agent:UnderlayIp={underlay}",
                     // This agent runs in the test's own namespace: it must not change it.
                     "--Agent:EnableForwarding=false", "--Agent:ServiceProxy=false", "--Agent:NetworkPolicy=false", $"--Agent:AttachSocket={socket}"]) info.ArgumentList.Add(arg);
        return (Process.Start(info)!, socket);
    }

    /// <summary>Kills the agent if it still runs and removes its attach socket (a killed agent leaves it).</summary>
    private static async Task StopAsync(Process agent, string socket)
    {
        using (agent)
        {
            if (!agent.HasExited) agent.Kill();
            await agent.WaitForExitAsync();
        }
        File.Delete(socket);
    }

    [Fact]
    public async Task Agent_RegistersItsNodeAndKeepsItReady_UntilItIsKilled()
    {
        await using var silo = await SiloInstance.StartAsync("--ControlPlane:NodeLeaseDuration=00:00:03");
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Node } });
        var (agent, socket) = StartAgent(silo, "agent-1", "10.255.0.9");
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
            await StopAsync(agent, socket);
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
        var (agent, socket) = StartAgent(silo, "agent-2", "10.255.0.19");
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
            await StopAsync(agent, socket);
        }
    }
}
