using System.Diagnostics;
using System.Globalization;
using ControlPlane.Cni.Bench;
using ControlPlane.Cni.Tests;

// CNI ADD → reachable from another host, over N containers (default 100), one after another.
// Each container: a new network namespace on host 1; the clock starts; cnitool add (libcni runs
// the plugin, which calls host 1's agent; the agent creates the endpoint through the control
// plane and wires the veth); as soon as cnitool returns, a workload on host 2 pings the new
// address every 10 ms until the first reply; the clock stops at that reply (ping's exit).
// Reported: ADD (cnitool start → result) and ADD → first reply from host 2, p50 / p99 / max.
// Then every container is deleted (DEL timed the same way as ADD).
var count = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 100;
await using var cluster = await CniCluster.StartAsync(hosts: 2);
var network = (await cluster.CreateNetworkAsync("bench", 501)).Metadata.Name;
if (args.Length > 1 && args[1] == "breakdown")
{
    await Breakdown.RunAsync(cluster, network, count);
    return 0;
}
var one = cluster.WriteConfList($"cni{cluster.Id}b1", network, host: 1);
var two = cluster.WriteConfList($"cni{cluster.Id}b2", network, host: 2);
var probe = cluster.Netns("probe");
cluster.AddNamespace(probe);
var probeAdd = Runtimes.Cni(cluster, 2, "add", two, $"/run/netns/{probe}");
if (probeAdd.Code != 0) throw new InvalidOperationException(probeAdd.ToString());

var add = new List<double>();
var reach = new List<double>();
var del = new List<double>();
var pods = new List<string>();
for (var i = 0; i < count; i++)
{
    var pod = cluster.Netns($"b{i}");
    cluster.AddNamespace(pod);
    pods.Add(pod);
    var clock = Stopwatch.StartNew();
    var added = Runtimes.Cni(cluster, 1, "add", one, $"/run/netns/{pod}");
    var addDone = clock.Elapsed.TotalMilliseconds;
    if (added.Code != 0) throw new InvalidOperationException(added.ToString());
    var address = added.Json["ips"]![0]!["address"]!.GetValue<string>().Split('/')[0];
    var ping = Shell.Run("ip", "netns", "exec", probe, "ping", "-c", "1", "-i", "0.01", "-w", "10", address);
    var reached = clock.Elapsed.TotalMilliseconds;
    if (ping.Code != 0) throw new InvalidOperationException($"{address} not reachable from host 2: {ping.Output}");
    add.Add(addDone);
    reach.Add(reached);
}
foreach (var pod in pods)
{
    var clock = Stopwatch.StartNew();
    var deleted = Runtimes.Cni(cluster, 1, "del", one, $"/run/netns/{pod}");
    if (deleted.Code != 0) throw new InvalidOperationException(deleted.ToString());
    del.Add(clock.Elapsed.TotalMilliseconds);
}
Runtimes.Cni(cluster, 2, "del", two, $"/run/netns/{probe}");

Console.WriteLine($"{count} containers, one at a time, cnitool (libcni 1.1.2) on host 1, reachability pinged from a workload on host 2; ms:");
Console.WriteLine("| measure | p50 | p99 | max |");
Console.WriteLine("|---|---|---|---|");
Breakdown.Print("ADD (cnitool → result)", add);
Breakdown.Print("ADD → first reply from host 2", reach);
Breakdown.Print("DEL (cnitool)", del);
return 0;
