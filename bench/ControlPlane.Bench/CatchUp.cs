using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Bench;

/// <summary>
/// A resumed watch catching up: COUNT endpoint creates are committed after a position, then a
/// watch of endpoints resumes from it and the time until it has every one is measured, with
/// LOAD callers creating more endpoints all the while (0: an idle silo). What a watcher that was
/// away (a restarted agent, a reconnecting orchestrator) waits for before it is current again.
/// </summary>
internal static class CatchUp
{
    public static async Task RunAsync(string address, int count, int load)
    {
        using var client = new ControlPlaneClient(address, 8);
        var (run, ns) = await BenchNamespace.CreateAsync(client, "catch");
        Endpoint Make(string name) => CreateThroughput.Endpoint(ns, name, ns, run);
        var token = (await client.Namespaces.ListAsync(new ListRequest { PageSize = 1 })).ResumeToken;
        var next = 0;
        await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            for (int i; (i = Interlocked.Increment(ref next)) <= count;) await client.Endpoints.CreateAsync(Make($"e{i}"));
        }));

        using var stop = new CancellationTokenSource();
        var loaded = 0;
        var writers = Enumerable.Range(0, load).Select(c => Task.Run(async () =>
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                await client.Endpoints.CreateAsync(Make($"load-{c}-{i}"));
                Interlocked.Increment(ref loaded);
            }
        })).ToList();
        if (load > 0) await Task.Delay(2000);
        var clock = Stopwatch.StartNew();
        var seen = 0;
        var first = TimeSpan.Zero;
        using var watch = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await foreach (var e in client.WatchAsync(new WatchRequest { Kinds = { Kind.Endpoint }, Namespace = ns, ResumeToken = token }, Calls.Until(watch.Token)))
        {
            if (e.Endpoint is not { } endpoint || !endpoint.Metadata.Name.StartsWith('e')) continue;
            if (seen++ == 0) first = clock.Elapsed;
            if (seen == count) break;
        }
        var took = clock.Elapsed;
        var during = loaded;
        stop.Cancel();
        await Task.WhenAll(writers.Select(w => w.ContinueWith(_ => { })));
        Console.WriteLine();
        Console.WriteLine($"## Watch catch-up: {count} endpoint creates behind, {load} create callers meanwhile");
        Console.WriteLine("| behind | load callers | first event s | caught up s | events/s | creates/s meanwhile |");
        Console.WriteLine("|---|---|---|---|---|---|");
        Console.WriteLine($"| {count} | {load} | {first.TotalSeconds:F2} | {took.TotalSeconds:F2} | {count / took.TotalSeconds:F0} | {during / took.TotalSeconds:F0} |");
    }
}
