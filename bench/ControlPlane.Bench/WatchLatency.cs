using System.Collections.Concurrent;
using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Bench;

/// <summary>
/// Write→watch-event latency: W watchers stream every change of a kind while a writer creates
/// objects at a fixed rate; latency runs from sending a write to each watcher receiving its event.
/// A warm-up at the same rate comes first (WARMUP_SECONDS, default 5): the steady state is measured.
/// </summary>
internal static class WatchLatency
{
    /// <summary>One watcher: calls <c>synced</c> once it streams live events and <c>seen</c> with each event's name, until cancelled.</summary>
    public delegate Task Watcher(Action synced, Action<string> seen, CancellationToken cancellationToken);

    /// <summary>
    /// The control plane: watchers of namespaces, namespace creates. With several silo addresses
    /// the watchers are spread over the silos evenly and the writes go round-robin to them.
    /// </summary>
    public static async Task RunAsync(string addresses, int watchers, int writesPerSecond, TimeSpan duration)
    {
        var silos = FailoverCallInvoker.Split(addresses).Select(a => new ControlPlaneClient(a, int.Parse(Environment.GetEnvironmentVariable("CONNECTIONS") ?? "4"))).ToArray();
        var next = 0;
        var writes = 0;
        await MeasureAsync($"Write → watch event latency ({silos.Length} silo{(silos.Length > 1 ? "s" : "")})", watchers, writesPerSecond, duration,
            async (synced, seen, cancellationToken) =>
            {
                var client = silos[Interlocked.Increment(ref next) % silos.Length];
                try
                {
                    await foreach (var e in client.WatchAsync(new WatchRequest { Kinds = { Kind.Namespace } }, Calls.Until(cancellationToken)))
                    {
                        if (e.InitialEventsEnd) synced();
                        if (e.Namespace is { } ns) seen(ns.Metadata.Name);
                    }
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.Cancelled)
                {
                }
            },
            name => silos[Interlocked.Increment(ref writes) % silos.Length].Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = name } }));
        foreach (var silo in silos) silo.Dispose();
    }

    public static async Task MeasureAsync(string title, int watchers, int writesPerSecond, TimeSpan duration, Watcher watch, Func<string, Task> write)
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        var sent = new ConcurrentDictionary<string, long>();
        var samples = new ConcurrentBag<double>();
        // SERIES=1: also the latency of the measured writes per 250 ms in which they were sent, to tell a backlog from stalls.
        var series = Environment.GetEnvironmentVariable("SERIES") == "1" ? new ConcurrentBag<(double At, double Ms)>() : null;
        var measuredFrom = 0L;
        var acks = new ConcurrentBag<double>();
        using var stop = new CancellationTokenSource();
        var synced = 0;
        var allSynced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var streams = Enumerable.Range(0, watchers).Select(_ => Task.Run(async () =>
        {
            try
            {
                await watch(
                    () => { if (Interlocked.Increment(ref synced) == watchers) allSynced.TrySetResult(); },
                    name =>
                    {
                        if (!sent.TryGetValue(name, out var start)) return;
                        var ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
                        samples.Add(ms);
                        if (series is not null && measuredFrom != 0 && start >= measuredFrom) series.Add((Stopwatch.GetElapsedTime(measuredFrom, start).TotalSeconds, ms));
                    },
                    stop.Token);
            }
            catch (Exception e) when (!stop.IsCancellationRequested)
            {
                // A watcher that fails ends the measurement: say why.
                allSynced.TrySetException(e);
                throw;
            }
        })).ToList();
        await allSynced.Task.WaitAsync(TimeSpan.FromSeconds(300));

        var warmup = double.Parse(Environment.GetEnvironmentVariable("WARMUP_SECONDS") ?? "5");
        await WriteAsync("w", (int)(writesPerSecond * warmup));
        samples.Clear();
        acks.Clear();
        measuredFrom = Stopwatch.GetTimestamp();
        if (series is not null) Console.WriteLine($"# measured from {DateTime.UtcNow:HH:mm:ss.fff} UTC");
        var total = (int)(writesPerSecond * duration.TotalSeconds);
        var achieved = await WriteAsync("m", total);
        await stop.CancelAsync();
        await Task.WhenAll(streams);

        var sorted = samples.Order().ToArray();
        var acked = acks.Order().ToArray();
        Console.WriteLine();
        Console.WriteLine($"## {title}");
        Console.WriteLine("| watchers | writes | writes/s | events delivered | p50 ms | p99 ms | max ms | write ack p50 ms | write ack p99 ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {watchers} | {total} | {achieved:F0} | {sorted.Length}/{(long)total * watchers} | {ClosedLoop.Percentile(sorted, 0.5):F2} | {ClosedLoop.Percentile(sorted, 0.99):F2} | {sorted.LastOrDefault():F2} | {ClosedLoop.Percentile(acked, 0.5):F2} | {ClosedLoop.Percentile(acked, 0.99):F2} |");
        if (series is not null)
        {
            Console.WriteLine();
            Console.WriteLine("| writes sent in (250 ms) | events | p50 ms | p99 ms | max ms |");
            Console.WriteLine("|---|---|---|---|---|");
            foreach (var slot in series.GroupBy(s => (int)(s.At * 4)).OrderBy(g => g.Key))
            {
                var ms = slot.Select(s => s.Ms).Order().ToArray();
                Console.WriteLine($"| {slot.Key / 4.0:F2} s | {ms.Length} | {ClosedLoop.Percentile(ms, 0.5):F1} | {ClosedLoop.Percentile(ms, 0.99):F1} | {ms[^1]:F1} |");
            }
        }

        // Writes count objects at the rate, then waits until every watcher has seen every one
        // (or 10 s more); returns the rate achieved.
        async Task<double> WriteAsync(string label, int count)
        {
            var before = samples.Count;
            var interval = TimeSpan.FromSeconds(1.0 / writesPerSecond);
            var clock = Stopwatch.StartNew();
            var writes = new List<Task>(count);
            for (var i = 0; i < count; i++)
            {
                var due = interval * i;
                // One reading of the clock: a second one could be past due, and a wait of -1 ms is
                // infinite (Task.Delay truncates -1.5 ms to -1, Timeout.Infinite): a run hung so.
                if (due - clock.Elapsed is var wait && wait > TimeSpan.Zero) await Task.Delay(wait);
                var name = $"{label}-{run}-{i}";
                var start = sent[name] = Stopwatch.GetTimestamp();
                writes.Add(Acked(write(name), start));
            }
            await Task.WhenAll(writes);
            var rate = count / clock.Elapsed.TotalSeconds;
            var deadline = Stopwatch.StartNew();
            while (samples.Count - before < (long)count * watchers && deadline.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
            return rate;
        }

        async Task Acked(Task write, long start)
        {
            await write;
            acks.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
        }
    }
}
