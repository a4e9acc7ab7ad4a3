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
        var prefix = $"/registry/namespaces/{Guid.NewGuid():N}/";
        var value = ByteString.CopyFrom(new Namespace { Metadata = new ObjectMeta { Name = "n" } }.ToByteArray());
        await WatchLatency.MeasureAsync("etcd write → watch event latency", watchers, writesPerSecond, duration,
            async (synced, seen, cancellationToken) =>
            {
                var request = new Etcdserverpb.WatchRequest { CreateRequest = new WatchCreateRequest { Key = ByteString.CopyFromUtf8(prefix), RangeEnd = ByteString.CopyFromUtf8(prefix[..^1] + "0") } };
                try
                {
                    await etcd.WatchAsync(request, (WatchResponse response) =>
                    {
                        if (response.Created) synced();
                        foreach (var e in response.Events) seen(e.Kv.Key.ToStringUtf8()[prefix.Length..]);
                    }, cancellationToken: cancellationToken);
                }
                catch (Exception) when (cancellationToken.IsCancellationRequested)
                {
                }
            },
            name => etcd.PutAsync(new PutRequest { Key = ByteString.CopyFromUtf8(prefix + name), Value = value }));
    }

    /// <summary>What an endpoint looks like stored: its protobuf encoding.</summary>
    private static byte[] SampleValue(string run) => CreateThroughput.Endpoint("bench", "e-0-0", "bench", run).ToByteArray();
}
