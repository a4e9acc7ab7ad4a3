using System.Collections.Concurrent;
using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using dotnet_etcd;
using Etcdserverpb;
using Google.Protobuf;

namespace ControlPlane.Bench;

/// <summary>
/// The same two loads against etcd (the store Kubernetes writes to), through the dotnet-etcd
/// client over the same kind of gRPC channel: Put of an endpoint-sized value with N callers, and
/// write → watch-event latency with W watchers on a key prefix.
/// </summary>
internal static class EtcdBench
{
    public static async Task PutsAsync(Uri address, int callers, TimeSpan duration)
    {
        var connections = int.Parse(Environment.GetEnvironmentVariable("CONNECTIONS") ?? "8");
        using var channel = ControlPlaneChannel.Create(address.ToString(), connections);
        var etcd = new EtcdClient(channel.CreateCallInvoker());
        var run = Guid.NewGuid().ToString("N")[..6];
        var value = ByteString.CopyFrom(SampleValue(run));
        await Task.WhenAll(Enumerable.Range(0, callers).Select(i => etcd.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8($"/warm/{run}/{i}"), Value = value })));

        var result = await ClosedLoop.RunAsync(callers, duration, (label, caller, i) =>
            etcd.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8($"/registry/endpoints/{run}/{label}-{caller}-{i}"), Value = value }));
        Console.WriteLine();
        Console.WriteLine("## etcd Put throughput (gRPC, fsync per commit)");
        Console.WriteLine("| callers | connections | calls | failed | seconds | calls/s | p50 ms | p99 ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {callers} | {connections} | {result.Done} | {result.Failed} | {result.Seconds:F1} | {result.Rate:F0} | {result.Percentile(0.50):F2} | {result.Percentile(0.99):F2} |");
    }

    public static async Task WatchAsync(Uri address, int watchers, int writesPerSecond, TimeSpan duration)
    {
        using var channel = ControlPlaneChannel.Create(address.ToString(), int.Parse(Environment.GetEnvironmentVariable("CONNECTIONS") ?? "4"));
        var etcd = new EtcdClient(channel.CreateCallInvoker());
        var run = Guid.NewGuid().ToString("N")[..6];
        var prefix = $"/registry/namespaces/{run}/";
        var sent = new ConcurrentDictionary<string, long>();
        var samples = new ConcurrentBag<double>();
        using var stop = new CancellationTokenSource();
        var started = 0;
        var allStarted = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var streams = Enumerable.Range(0, watchers).Select(_ => Task.Run(async () =>
        {
            var request = new Etcdserverpb.WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(prefix[..^1] + "0") } };
            try
            {
                await etcd.WatchAsync(request, (WatchResponse response) =>
                {
                    if (response.Created && Interlocked.Increment(ref started) == watchers) allStarted.TrySetResult();
                    foreach (var e in response.Events)
                    {
                        if (sent.TryGetValue(e.Kv.Key.ToStringUtf8(), out var start)) samples.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                }, cancellationToken: stop.Token);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
            }
        })).ToList();
        await allStarted.Task.WaitAsync(TimeSpan.FromSeconds(30));

        var value = ByteString.CopyFrom(new Namespace { Metadata = new ObjectMeta { Name = "n" } }.ToByteArray());
        var total = (int)(writesPerSecond * duration.TotalSeconds);
        var interval = TimeSpan.FromSeconds(1.0 / writesPerSecond);
        var clock = Stopwatch.StartNew();
        var writes = new List<Task>(total);
        for (var i = 0; i < total; i++)
        {
            var due = interval * i;
            if (clock.Elapsed < due) await Task.Delay(due - clock.Elapsed);
            var key = $"{prefix}w-{i}";
            sent[key] = Stopwatch.GetTimestamp();
            writes.Add(etcd.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(key), Value = value }));
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
        Console.WriteLine("## etcd write → watch event latency");
        Console.WriteLine("| watchers | writes | writes/s | events delivered | p50 ms | p99 ms | max ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {watchers} | {total} | {achieved:F0} | {sorted.Length}/{expected} | {ClosedLoop.Percentile(sorted, 0.5):F2} | {ClosedLoop.Percentile(sorted, 0.99):F2} | {sorted.LastOrDefault():F2} |");
    }

    /// <summary>What an endpoint looks like stored: its protobuf encoding.</summary>
    private static byte[] SampleValue(string run) => CreateThroughput.Endpoint("bench", "e-0-0", "bench", run).ToByteArray();
}
