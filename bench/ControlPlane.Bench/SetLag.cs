using System.Collections.Concurrent;
using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Bench;

/// <summary>
/// Endpoint → endpoint set latency: S services in one namespace each select a share of the
/// endpoints a paced writer creates (R per second for the duration, after as many as PRELOAD
/// already exist); a watcher of endpoint sets records, for each endpoint, the time from its
/// create being acknowledged to the first set holding it. The work of the endpoint set
/// controller grows with the endpoints of a namespace and its services.
/// </summary>
internal static class SetLag
{
    public static async Task RunAsync(string address, int services, int perSecond, int preload, TimeSpan duration)
    {
        using var client = new ControlPlaneClient(address, 8);
        var (run, ns) = await BenchNamespace.CreateAsync(client, "lag");
        for (var i = 0; i < services; i++)
        {
            await client.Services.CreateAsync(new Service
            {
                Metadata = new ObjectMeta { Name = $"s{i}", Namespace = ns },
                Spec = new ServiceSpec { Network = ns, Selector = { ["app"] = $"s{i}" }, Ports = { new ServicePort { Port = 80 } } },
            });
        }
        Endpoint Make(int i) => new()
        {
            Metadata = new ObjectMeta { Name = $"e{i}", Namespace = ns, Labels = { ["app"] = $"s{i % services}" } },
            Spec = new EndpointSpec { Network = ns, Node = $"node-{run}", Ready = true },
        };
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) <= preload;) await client.Endpoints.CreateAsync(Make(i));
        }));

        var sent = new ConcurrentDictionary<string, long>();
        var lags = new ConcurrentBag<double>();
        var seen = new HashSet<string>();
        using var stop = new CancellationTokenSource();
        var synced = new TaskCompletionSource();
        var watcher = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in client.WatchAsync(new WatchRequest { Kinds = { Kind.ServiceEndpoints }, Namespace = ns }, Calls.Until(stop.Token)))
                {
                    if (e.InitialEventsEnd) synced.TrySetResult();
                    if (e.ServiceEndpoints is not { } set) continue;
                    var now = Stopwatch.GetTimestamp();
                    foreach (var endpoint in set.Endpoints)
                    {
                        if (sent.TryGetValue(endpoint.Name, out var at) && seen.Add(endpoint.Name)) lags.Add(Stopwatch.GetElapsedTime(at, now).TotalMilliseconds);
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
            {
            }
        });
        await synced.Task;
        var interval = TimeSpan.FromSeconds(1.0 / perSecond);
        var start = Stopwatch.GetTimestamp();
        var writes = new List<Task>();
        for (var k = 0; Stopwatch.GetElapsedTime(start) < duration; k++)
        {
            var due = interval * k - Stopwatch.GetElapsedTime(start);
            if (due > TimeSpan.Zero) await Task.Delay(due);
            var i = preload + 1 + k;
            writes.Add(Task.Run(async () =>
            {
                sent[$"e{i}"] = Stopwatch.GetTimestamp();
                await client.Endpoints.CreateAsync(Make(i));
            }));
        }
        await Task.WhenAll(writes);
        var deadline = Stopwatch.GetTimestamp();
        while (lags.Count < writes.Count && Stopwatch.GetElapsedTime(deadline) < TimeSpan.FromSeconds(30)) await Task.Delay(50);
        stop.Cancel();
        await watcher;
        var sorted = lags.Order().ToArray();
        double P(double q) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];
        Console.WriteLine();
        Console.WriteLine($"## Endpoint → endpoint set latency ({services} services, {preload} endpoints before, {perSecond} creates/s for {duration.TotalSeconds:F0} s)");
        Console.WriteLine("| creates | in a set | p50 ms | p90 ms | p99 ms | max ms |");
        Console.WriteLine("|---|---|---|---|---|---|");
        Console.WriteLine($"| {writes.Count} | {sorted.Length} | {P(0.5):F1} | {P(0.9):F1} | {P(0.99):F1} | {(sorted.Length == 0 ? double.NaN : sorted[^1]):F1} |");
    }
}
