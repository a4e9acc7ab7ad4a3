using System.Text.Json.Nodes;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>The runtime settings the agent's correctness depends on, as its build writes them.</summary>
public sealed class RuntimeSettingsTests
{
    /// <summary>
    /// Background GC is off: its thread is started by whichever thread triggers a collection, and
    /// one started from a thread inside a workload's network namespace stays in it, keeping a
    /// deleted workload's namespace and veth alive (seen in the CNI tests: '.NET BGC' in it).
    /// </summary>
    [Fact]
    public void TheAgent_RunsWithoutBackgroundGc()
    {
        var config = JsonNode.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.runtimeconfig.json")))!;
        Assert.Equal(false, config["runtimeOptions"]?["configProperties"]?["System.GC.Concurrent"]?.GetValue<bool>());
    }
}
