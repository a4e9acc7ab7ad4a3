using System.Diagnostics;
using ControlPlane.Bench;

// Usage: ControlPlane.Bench <address[,address…]> [creates|gets|misses|watch|all|memory N|etcd-puts|etcd-watch|watchers N|failover DIR ROUNDS|store-commits DIR|set-lag SERVICES RATE PRELOAD|catchup COUNT LOAD]
// Several comma-separated silo addresses spread the load over those silos.
var addresses = args.Length > 0 ? args[0] : "http://127.0.0.1:7070";
var address = new Uri(ControlPlane.Contracts.Client.FailoverCallInvoker.Split(addresses)[0]);
var what = args.Length > 1 ? args[1] : "all";
// DURATION (seconds, default 15): how long the timed part of the throughput scenarios runs.
var duration = TimeSpan.FromSeconds(double.Parse(Environment.GetEnvironmentVariable("DURATION") ?? "15"));
Console.WriteLine($"# control plane benchmark against {addresses}, {Environment.ProcessorCount} cores, {DateTime.UtcNow:u}");
if (what is "creates" or "all")
{
    await CreateThroughput.RunAsync(addresses, callers: int.Parse(Environment.GetEnvironmentVariable("CALLERS") ?? "64"), duration);
}
if (what is "watchers")
{
    await WatchLatency.RunAsync(addresses, watchers: int.Parse(args[2]), writesPerSecond: 1000, duration: TimeSpan.FromSeconds(10));
}
if (what is "failover")
{
    await Failover.RunAsync(addresses, clusterDirectory: args[2], rounds: int.Parse(args[3]));
}
if (what is "store-commits")
{
    // The address is not used (give any, e.g. the default): the store is opened in DIR, in this process.
    StoreCommits.Run(args[2], batches: int.Parse(Environment.GetEnvironmentVariable("BATCHES") ?? "1500"));
}
if (what is "etcd-puts")
{
    await EtcdBench.PutsAsync(address, callers: int.Parse(Environment.GetEnvironmentVariable("CALLERS") ?? "64"), duration: TimeSpan.FromSeconds(15));
}
if (what is "etcd-watch")
{
    await EtcdBench.WatchAsync(address, watchers: 100, writesPerSecond: 1000, duration: TimeSpan.FromSeconds(10));
}
if (what is "set-lag")
{
    // set-lag SERVICES CREATES_PER_SECOND PRELOAD
    await SetLag.RunAsync(addresses, services: int.Parse(args[2]), perSecond: int.Parse(args[3]), preload: int.Parse(args[4]), duration: TimeSpan.FromSeconds(15));
}
if (what is "catchup")
{
    // catchup COUNT LOAD: a watch resumed COUNT endpoint creates back, LOAD create callers meanwhile.
    await CatchUp.RunAsync(addresses, count: int.Parse(args[2]), load: int.Parse(args[3]));
}
if (what is "memory")
{
    await MemoryLoad.RunAsync(address, count: args.Length > 2 ? int.Parse(args[2]) : 100_000);
}
if (what is "misses")
{
    await CreateThroughput.RunAsync(addresses, callers: 64, duration, misses: true);
}
if (what is "gets")
{
    await CreateThroughput.RunAsync(addresses, callers: 64, duration, gets: true);
}
if (what is "watch" or "all")
{
    await WatchLatency.RunAsync(addresses, watchers: 100, writesPerSecond: 1000, duration: TimeSpan.FromSeconds(10));
}
