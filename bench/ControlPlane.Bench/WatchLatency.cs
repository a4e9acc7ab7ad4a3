using System.Collections.Concurrent;
using System.Diagnostics;
using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Bench;

/// <summary>
/// Write→watch-event latency: W watchers stream every namespace change while a writer updates
/// namespaces at a fixed rate; latency is from sending the write to each watcher receiving its event.
/// </summary>
internal static class WatchLatency
{
    public static async Task RunAsync(Uri address, int watchers, int writesPerSecond, TimeSpan duration)
    {
        using var client = new ControlPlaneClient(address, int.Parse(Environment.GetEnvironmentVariable("CONNECTIONS") ?? "4"));
        var run = Guid.NewGuid().ToString("N")[..6];
        var sent = new ConcurrentDictionary<string, long>();
        var samples = new ConcurrentBag<double>();
        using var stop = new CancellationTokenSource();
        var synced = 0;
        var allSynced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var streams = Enumerable.Range(0, watchers).Select(_ => Task.Run(async () =>
        {
            try
            {
                await foreach (var e in client.WatchAsync(new WatchRequest { Kinds = { Kind.Namespace } }, Calls.Until(stop.Token)))
                {
                    if (e.InitialEventsEnd && Interlocked.Increment(ref synced) == watchers) allSynced.TrySetResult();
                    if (e.Namespace is { } ns && sent.TryGetValue(ns.Metadata.Name, out var start))
                    {
                        samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
            }
        })).ToList();
        await allSynced.Task;

        var total = (int)(writesPerSecond * duration.TotalSeconds);
        var interval = TimeSpan.FromSeconds(1.0 / writesPerSecond);
        var clock = Stopwatch.StartNew();
        var writes = new List<Task>(total);
        for (var i = 0; i < total; i++)
        {
            var due = interval * i;
            if (clock.Elapsed < due) await Task.Delay(due - clock.Elapsed);
            var name = $"w-{run}-{i}";
            sent[name] = Stopwatch.GetTimestamp();
            writes.Add(client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = name } }));
        }
        await Task.WhenAll(writes);
        var achieved = total / clock.Elapsed.TotalSeconds;
        var expected = (long)total * watchers;
        var deadline = Stopwatch.StartNew();
        while (samples.Count < expected && deadline.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
        await stop.CancelAsync();
        await Task.WhenAll(streams);

        var sorted = samples.Order().ToArray();
        Console.WriteLine();
        Console.WriteLine("## Write → watch event latency");
        Console.WriteLine("| watchers | writes | writes/s | events delivered | p50 ms | p99 ms | max ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {watchers} | {total} | {achieved:F0} | {sorted.Length}/{expected} | {ClosedLoop.Percentile(sorted, 0.5):F2} | {ClosedLoop.Percentile(sorted, 0.99):F2} | {sorted.LastOrDefault():F2} |");
    }
}
