using System.Diagnostics;
using ControlPlane.Bench;

// Usage: ControlPlane.Bench <address> [creates|gets|watch|all|memory N|etcd-puts|etcd-watch]
var address = new Uri(args.Length > 0 ? args[0] : "http://127.0.0.1:7070");
var what = args.Length > 1 ? args[1] : "all";
Console.WriteLine($"# control plane benchmark against {address}, {Environment.ProcessorCount} cores, {DateTime.UtcNow:u}");
if (what is "creates" or "all")
{
    await CreateThroughput.RunAsync(address, callers: int.Parse(Environment.GetEnvironmentVariable("CALLERS") ?? "64"), duration: TimeSpan.FromSeconds(15));
}
if (what is "etcd-puts")
{
    await EtcdBench.PutsAsync(address, callers: int.Parse(Environment.GetEnvironmentVariable("CALLERS") ?? "64"), duration: TimeSpan.FromSeconds(15));
}
if (what is "etcd-watch")
{
    await EtcdBench.WatchAsync(address, watchers: 100, writesPerSecond: 1000, duration: TimeSpan.FromSeconds(10));
}
if (what is "memory")
{
    await MemoryLoad.RunAsync(address, count: args.Length > 2 ? int.Parse(args[2]) : 100_000);
}
if (what is "misses")
{
    await CreateThroughput.RunAsync(address, callers: 64, duration: TimeSpan.FromSeconds(15), misses: true);
}
if (what is "gets")
{
    await CreateThroughput.RunAsync(address, callers: 64, duration: TimeSpan.FromSeconds(15), gets: true);
}
if (what is "watch" or "all")
{
    await WatchLatency.RunAsync(address, watchers: 100, writesPerSecond: 1000, duration: TimeSpan.FromSeconds(10));
}
