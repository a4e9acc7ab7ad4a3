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

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}
