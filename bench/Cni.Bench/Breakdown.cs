using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ControlPlane.Cni.Tests;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cni.Bench;

/// <summary>Where an ADD's time goes: the plugin process alone, a call to the agent, the agent's attach alone.</summary>
internal static class Breakdown
{
    public static async Task RunAsync(CniCluster cluster, string network, int count)
    {
        var conf = cluster.WriteConfList($"cni{cluster.Id}bd", network, host: 1);
        var config = Runtimes.PluginConfig(cluster, conf);
        var version = new List<double>();
        var status = new List<double>();
        var attach = new List<double>();
        var add = new List<double>();
        using var channel = ControlPlaneChannel.ForUnixSocket(cluster.AgentSocket(1));
        var agent = new Agent.AgentClient(channel);
        for (var i = 0; i < count; i++)
        {
            version.Add(Time(() => Runtimes.Plugin(cluster, 1, "VERSION", new JsonObject { ["cniVersion"] = "1.0.0" })));
            status.Add(Time(() => Runtimes.Plugin(cluster, 1, "STATUS", config)));
            var (a, b) = (cluster.Netns($"x{i}"), cluster.Netns($"y{i}"));
            cluster.AddNamespace(a);
            cluster.AddNamespace(b);
            var clock = Stopwatch.StartNew();
            await agent.AttachAsync(new AttachRequest { Namespace = "default", Name = $"direct-{i}", Network = network, NetnsPath = $"/run/netns/{a}", InterfaceName = "eth0" }, Calls.Within(TimeSpan.FromSeconds(30)));
            attach.Add(clock.Elapsed.TotalMilliseconds);
            add.Add(Time(() => Runtimes.Plugin(cluster, 1, "ADD", config, $"plugin-{i}", $"/run/netns/{b}")));
        }
        Console.WriteLine($"Breakdown over {count}, ms:");
        Console.WriteLine("| measure | p50 | p99 | max |");
        Console.WriteLine("|---|---|---|---|");
        Print("plugin VERSION (process start and exit, in the host's namespace)", version);
        Print("plugin STATUS (process + one call to the agent + one to the control plane)", status);
        Print("agent Attach called directly (no plugin process)", attach);
        Print("plugin ADD run directly (no cnitool)", add);
    }

    private static double Time(Func<Runtimes.Outcome> run)
    {
        var clock = Stopwatch.StartNew();
        var outcome = run();
        if (outcome.Code != 0) throw new InvalidOperationException(outcome.ToString());
        return clock.Elapsed.TotalMilliseconds;
    }

    public static void Print(string name, List<double> values)
    {
        var sorted = values.Order().ToList();
        double At(double q) => sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(q * sorted.Count) - 1)];
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {name} | {At(0.5):F1} | {At(0.99):F1} | {sorted[^1]:F1} |"));
    }
}
