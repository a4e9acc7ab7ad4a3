using System.Collections.Concurrent;
using Grpc.Core;
using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

public sealed class CrashRecoveryTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-crash-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task Sigkill_AfterAcknowledgedWrites_LosesNothingAndNeverReusesAnAddress()
    {
        var acknowledged = new ConcurrentDictionary<string, string>();
        string tokenBefore;
        await using (var silo = await SiloProcess.StartAsync(_data))
        {
            await SeedAsync(silo.Client, cidr: "10.50.0.0/20");
            tokenBefore = await PositionAsync(silo.Client);
            var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var creates = Enumerable.Range(0, 400).Select(async i =>
            {
                try
                {
                    var endpoint = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"pod-{i}", "net", "node-a"));
                    acknowledged[endpoint.Metadata.Name] = endpoint.Status.Ips[0];
                    if (acknowledged.Count >= 150) enough.TrySetResult();
                }
                catch (RpcException)
                {
                    // In flight when the process died: not acknowledged, so it may or may not exist.
                }
            }).ToList();
            await enough.Task.WaitAsync(TimeSpan.FromSeconds(60));
            silo.Kill();
            await Task.WhenAll(creates);
        }
        Assert.True(acknowledged.Count >= 150);

        await using var restarted = await SiloProcess.StartAsync(_data);
        var stored = new Dictionary<string, string>();
        var request = new ListRequest { Namespace = "ns", PageSize = 1000 };
        var list = await restarted.Client.Endpoints.ListAsync(request);
        foreach (var endpoint in list.Endpoints) stored[endpoint.Metadata.Name] = endpoint.Status.Ips[0];

        foreach (var (name, ip) in acknowledged)
        {
            Assert.True(stored.TryGetValue(name, out var kept), $"acknowledged endpoint {name} was lost");
            Assert.Equal(ip, kept);
        }
        Assert.Equal(stored.Count, stored.Values.Distinct().Count());

        // New allocations never collide with addresses held before the crash.
        var fresh = await Task.WhenAll(Enumerable.Range(0, 100).Select(i => restarted.Client.Endpoints.CreateAsync(Endpoint("ns", $"after-{i}", "net", "node-a"))));
        var all = stored.Values.Concat(fresh.Select(e => e.Status.Ips[0])).ToList();
        Assert.Equal(all.Count, all.Distinct().Count());

        // Revisions continued: the token taken before the crash still resumes, with every committed change after it.
        var added = new HashSet<string>();
        await using var watch = new WatchCollector(restarted.Client, new WatchRequest { Kinds = { Kind.Endpoint }, ResumeToken = tokenBefore });
        while (added.Count < stored.Count + fresh.Length)
        {
            var e = await watch.WaitForAsync(e => e.Type == EventType.Added, "an endpoint creation after the pre-crash token");
            Assert.True(added.Add(e.Endpoint.Metadata.Name), $"{e.Endpoint.Metadata.Name} delivered twice");
        }
        Assert.Equal(stored.Keys.Concat(fresh.Select(e => e.Metadata.Name)).Order(), added.Order());
    }

    /// <summary>
    /// The watch keeps causal order across SIGKILL restarts: a change acknowledged before another
    /// write began comes first in the replayed log, across kinds (different partitions), whichever
    /// silo process committed each. Writers relabel endpoints and services (every update a real
    /// change) while the silo is killed and restarted three times; a watch from a token taken
    /// before it all then delivers each acknowledged change once, in an order that puts every
    /// write after each one acknowledged before it was sent.
    /// </summary>
    [Fact]
    public async Task CausalOrder_HoldsAcrossSigkillRestarts_AcrossKinds()
    {
        var writes = new ConcurrentBag<(string Id, long Sent, long Acked)>();
        string token;
        await using (var silo = await SiloProcess.StartAsync(_data))
        {
            await SeedAsync(silo.Client);
            await Task.WhenAll(Enumerable.Range(0, 6).Select(i => silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"e{i}", "net", "node-a"))));
            await Task.WhenAll(Enumerable.Range(0, 6).Select(i => silo.Client.Services.CreateAsync(Service("ns", $"s{i}", "net", ("app", "x")))));
            token = await PositionAsync(silo.Client);
        }
        var counter = 0;
        for (var round = 0; round < 3; round++)
        {
            var silo = await SiloProcess.StartAsync(_data);
            try
            {
                var enough = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                var acked = 0;
                var writers = Enumerable.Range(0, 12).Select(async w =>
                {
                    while (true)
                    {
                        var value = $"v{Interlocked.Increment(ref counter)}";
                        var sent = System.Diagnostics.Stopwatch.GetTimestamp();
                        try
                        {
                            string id;
                            if (w % 2 == 0)
                            {
                                var update = Endpoint("ns", $"e{w / 2}", "net", "node-a", true, ("v", value));
                                id = "e|" + (await silo.Client.Endpoints.UpdateAsync(update)).Metadata.Etag + "|" + update.Metadata.Name;
                            }
                            else
                            {
                                var update = Service("ns", $"s{w / 2}", "net", ("app", "x"));
                                update.Metadata.Labels["v"] = value;
                                id = "s|" + (await silo.Client.Services.UpdateAsync(update)).Metadata.Etag + "|" + update.Metadata.Name;
                            }
                            writes.Add((id, sent, System.Diagnostics.Stopwatch.GetTimestamp()));
                            if (Interlocked.Increment(ref acked) == 150) enough.TrySetResult();
                        }
                        catch (RpcException)
                        {
                            return; // the silo died under it: not acknowledged
                        }
                    }
                }).ToList();
                await enough.Task.WaitAsync(TimeSpan.FromSeconds(60));
                silo.Kill();
                await Task.WhenAll(writers);
            }
            finally
            {
                await silo.DisposeAsync();
            }
        }

        await using var restarted = await SiloProcess.StartAsync(_data);
        var order = new Dictionary<string, int>();
        await using var watch = new WatchCollector(restarted.Client, new WatchRequest { Kinds = { Kind.Endpoint, Kind.Service }, ResumeToken = token });
        var wanted = writes.Select(w => w.Id).ToHashSet();
        while (!wanted.IsSubsetOf(order.Keys))
        {
            var e = await watch.WaitForAsync(_ => true, $"the acknowledged changes ({order.Count} events so far)");
            var id = e.Endpoint is { } endpoint ? $"e|{endpoint.Metadata.Etag}|{endpoint.Metadata.Name}"
                : e.Service is { } service ? $"s|{service.Metadata.Etag}|{service.Metadata.Name}" : null;
            if (id is null) continue;
            Assert.True(order.TryAdd(id, order.Count), $"{id} delivered twice");
        }
        // Every write comes after each one acknowledged before it was sent.
        var byAck = writes.OrderBy(w => w.Acked).ToList();
        var (next, latest, latestId) = (0, -1, "");
        foreach (var write in writes.OrderBy(w => w.Sent))
        {
            for (; next < byAck.Count && byAck[next].Acked < write.Sent; next++)
            {
                if (order[byAck[next].Id] > latest) (latest, latestId) = (order[byAck[next].Id], byAck[next].Id);
            }
            Assert.True(order[write.Id] > latest, $"{write.Id} (event {order[write.Id]}) came before {latestId} (event {latest}), which was acknowledged before it was sent");
        }
        Assert.True(writes.Count >= 450);
    }

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}
