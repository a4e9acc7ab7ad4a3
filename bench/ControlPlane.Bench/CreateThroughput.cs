using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Bench;

/// <summary>
/// CreateEndpoint over gRPC with N concurrent callers on one connection pool, for a fixed time.
/// With several silo addresses the callers are spread over the silos evenly, one pool per silo.
/// </summary>
internal static class CreateThroughput
{
    public static async Task RunAsync(string addresses, int callers, TimeSpan duration, bool gets = false, bool misses = false)
    {
        // Callers share one client per silo whose calls spread over a few HTTP/2 connections.
        var connections = int.Parse(Environment.GetEnvironmentVariable("CONNECTIONS") ?? "8");
        // NETCTL_CA/NETCTL_CERT/NETCTL_KEY (as netctl reads them): mutual TLS to https:// silos.
        var tls = Environment.GetEnvironmentVariable("NETCTL_CA") is { Length: > 0 } ca
            ? new ClientTls(ca, Environment.GetEnvironmentVariable("NETCTL_CERT"), Environment.GetEnvironmentVariable("NETCTL_KEY"))
            : null;
        var silos = FailoverCallInvoker.Split(addresses).Select(a => new ControlPlaneClient(a, connections, tls)).ToArray();
        var setup = silos[0];
        var (run, ns) = await BenchNamespace.CreateAsync(setup, "bench");
        var network = ns;

        // SERVICES=N: N services in the namespace, each selecting its share of the endpoints
        // created (label app=s<i>): the endpoint set controller's work on every create.
        var services = int.Parse(Environment.GetEnvironmentVariable("SERVICES") ?? "0");
        for (var i = 0; i < services; i++)
        {
            await setup.Services.CreateAsync(new Service
            {
                Metadata = new ObjectMeta { Name = $"s{i}", Namespace = ns },
                Spec = new ServiceSpec { Network = network, Selector = { ["app"] = $"s{i}" }, Ports = { new ServicePort { Port = 80 } } },
            });
        }
        Endpoint Labelled(string name, int caller)
        {
            var endpoint = Endpoint(ns, name, network, run);
            if (services > 0) endpoint.Metadata.Labels["app"] = $"s{caller % services}";
            return endpoint;
        }
        // STALLED=N: N watchers of every kind, each on its own connection, that never read: the
        // silo's cost of clients that stop reading while writes go on.
        var stalled = Enumerable.Range(0, int.Parse(Environment.GetEnvironmentVariable("STALLED") ?? "0"))
            .Select(_ => Grpc.Net.Client.GrpcChannel.ForAddress(FailoverCallInvoker.Split(addresses)[0])).ToList();
        var stalledCalls = stalled.Select(channel => new Watch.WatchClient(channel).Watch(new WatchRequest())).ToList();
        // First connections and the first activation of each code path, then the timed load.
        await Task.WhenAll(Enumerable.Range(0, callers).Select(i => silos[i % silos.Length].Endpoints.CreateAsync(Endpoint(ns, $"warm-{i}", network, run))));
        var result = await ClosedLoop.RunAsync(callers, duration, async (label, caller, i) =>
        {
            var client = silos[caller % silos.Length];
            if (misses)
            {
                try { await client.Endpoints.GetAsync(ns, $"missing-{label}-{caller}-{i}"); }
                catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.NotFound) { }
            }
            else if (gets) await client.Endpoints.GetAsync(ns, $"warm-{(caller + i) % callers}");
            else await client.Endpoints.CreateAsync(Labelled($"{label}-{caller}-{i}", caller));
        });
        var what = misses ? "Get of a missing endpoint" : gets ? "GetEndpoint" : "CreateEndpoint";
        Console.WriteLine();
        Console.WriteLine($"## {what} throughput (gRPC)");
        Console.WriteLine("| silos | callers | connections per silo | calls | failed | seconds | calls/s | p50 ms | p99 ms |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {silos.Length} | {callers} | {connections} | {result.Done} | {result.Failed} | {result.Seconds:F1} | {result.Rate:F0} | {result.Percentile(0.50):F2} | {result.Percentile(0.99):F2} |");
        foreach (var silo in silos) silo.Dispose();
        stalledCalls.ForEach(call => call.Dispose());
        stalled.ForEach(channel => channel.Dispose());
    }

    public static Endpoint Endpoint(string ns, string name, string network, string run) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns, Labels = { ["app"] = "bench" } },
        Spec = new EndpointSpec { Network = network, Node = $"node-{run}", Ready = true },
    };
}
