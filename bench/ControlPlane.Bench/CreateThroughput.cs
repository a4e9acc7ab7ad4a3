using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Bench;

/// <summary>CreateEndpoint over gRPC with N concurrent callers on one connection pool, for a fixed time.</summary>
internal static class CreateThroughput
{
    public static async Task RunAsync(Uri address, int callers, TimeSpan duration, bool gets = false, bool misses = false)
    {
        // Callers share one client whose calls spread over a few HTTP/2 connections.
        var connections = int.Parse(Environment.GetEnvironmentVariable("CONNECTIONS") ?? "8");
        using var client = new ControlPlaneClient(address, connections);
        var run = Guid.NewGuid().ToString("N")[..6];
        var ns = $"bench-{run}";
        var network = $"bench-{run}";
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = ns } });
        // Each run's node needs an underlay address of its own: two nodes never share one.
        var underlay = $"10.255.{Random.Shared.Next(256)}.{Random.Shared.Next(1, 255)}";
        await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = $"node-{run}" }, Spec = new NodeSpec { UnderlayIp = underlay } });
        // A /12 with /20 blocks: room for every endpoint the run can create (not 10.96/12: the service range).
        var second = Random.Shared.Next(1, 6) * 16;
        await client.Networks.CreateAsync(new Network
        {
            Metadata = new ObjectMeta { Name = network },
            Spec = new NetworkSpec { Vni = (uint)Random.Shared.Next(1000, 1 << 24), Ipv4Cidr = $"10.{second}.0.0/12", Ipv4BlockPrefixLength = 20 },
        });

        // Warm up connections and the JIT (tiered compilation settles after a few seconds of
        // load), then measure the steady state.
        await Task.WhenAll(Enumerable.Range(0, callers).Select(i => client.Endpoints.CreateAsync(Endpoint(ns, $"warm-{i}", network, run))));
        var warmup = TimeSpan.FromSeconds(double.Parse(Environment.GetEnvironmentVariable("WARMUP_SECONDS") ?? "5"));
        await LoadAsync("w", warmup, new List<double>[callers]);

        var latencies = new List<double>[callers];
        var (created, failed, elapsed) = await LoadAsync("e", duration, latencies);
        var all = latencies.SelectMany(l => l).Order().ToArray();
        Console.WriteLine();
        Console.WriteLine("## CreateEndpoint throughput (gRPC, embedded SQLite store)");
        Console.WriteLine("| callers | connections | created | failed | seconds | creates/s | p50 ms | p99 ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {callers} | {connections} | {created} | {failed} | {elapsed:F1} | {created / elapsed:F0} | {Percentile(all, 0.50):F2} | {Percentile(all, 0.99):F2} |");

        async Task<(long Done, long Failed, double Seconds)> LoadAsync(string prefix, TimeSpan length, List<double>[] latencies)
        {
            long done = 0, failed = 0;
            var stopwatch = Stopwatch.StartNew();
            var until = length.Ticks;
            await Task.WhenAll(Enumerable.Range(0, callers).Select(async caller =>
            {
                var mine = latencies[caller] = new List<double>(100_000);
                for (var i = 0; stopwatch.Elapsed.Ticks < until; i++)
                {
                    var start = Stopwatch.GetTimestamp();
                    try
                    {
                        if (misses)
                        {
                            try { await client.Endpoints.GetAsync(ns, $"missing-{prefix}-{caller}-{i}"); }
                            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound) { }
                        }
                        else if (gets) await client.Endpoints.GetAsync(ns, $"warm-{(caller + i) % callers}");
                        else await client.Endpoints.CreateAsync(Endpoint(ns, $"{prefix}-{caller}-{i}", network, run));
                        Interlocked.Increment(ref done);
                        mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                    }
                    catch (Exception e)
                    {
                        if (Interlocked.Increment(ref failed) < 5) Console.Error.WriteLine(e.Message);
                    }
                }
            }));
            return (done, failed, stopwatch.Elapsed.TotalSeconds);
        }
    }

    public static Endpoint Endpoint(string ns, string name, string network, string run) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns, Labels = { ["app"] = "bench" } },
        Spec = new EndpointSpec { Network = network, Node = $"node-{run}", Ready = true },
    };

    public static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
}
