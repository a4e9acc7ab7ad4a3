using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Silo.Security;
using Google.Rpc;
using Grpc.Core;
using Microsoft.Extensions.Time.Testing;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>Per-client limits: a real silo process refuses with RESOURCE_EXHAUSTED and retry information, then recovers.</summary>
public sealed class LimitsTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-limits-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task RequestsPerSecond_BurstIsRefusedWithRetryInfo_ThenRecovers()
    {
        await using var silo = await SiloProcess.StartAsync(_data, "--Limits:RequestsPerSecond=5", "--Limits:Burst=10");
        var refused = new List<RpcException>();
        var admitted = 0;
        for (var i = 0; i < 40; i++)
        {
            try
            {
                await silo.Client.Namespaces.CreateAsync(Namespace($"ns-{i}"));
                admitted++;
            }
            catch (RpcException e)
            {
                refused.Add(e);
            }
        }
        Assert.InRange(admitted, 10, 20);
        Assert.NotEmpty(refused);
        var first = refused[0];
        Assert.Equal(StatusCode.ResourceExhausted, first.StatusCode);
        Assert.Contains("peer:127.0.0.1", first.Status.Detail);
        Assert.Contains("Limits:RequestsPerSecond", first.Status.Detail);
        Assert.True(ControlPlane.Contracts.Client.Calls.IsClassified(first));
        var pushback = int.Parse(first.Trailers.GetValue(LimitsInterceptor.RetryPushbackTrailer)!, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(pushback, 1, 200);
        var status = first.GetRpcStatus()!;
        var retry = status.GetDetail<RetryInfo>()!;
        Assert.Equal(pushback, (int)retry.RetryDelay.ToTimeSpan().TotalMilliseconds);
        Assert.Equal("peer:127.0.0.1", status.GetDetail<QuotaFailure>()!.Violations[0].Subject);
        Assert.Equal(("RATE_LIMITED", LimitsInterceptor.Domain), (status.GetDetail<ErrorInfo>()!.Reason, status.GetDetail<ErrorInfo>()!.Domain));

        // The contract: after the delay the server names, the next call is admitted.
        var last = refused[^1];
        await Task.Delay(TimeSpan.FromMilliseconds(int.Parse(last.Trailers.GetValue(LimitsInterceptor.RetryPushbackTrailer)!, System.Globalization.CultureInfo.InvariantCulture)));
        await silo.Client.Namespaces.CreateAsync(Namespace("after"));

        // Health is never limited.
        using var channel = Grpc.Net.Client.GrpcChannel.ForAddress(silo.Address);
        var health = new Grpc.Health.V1.Health.HealthClient(channel);
        for (var i = 0; i < 30; i++) await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest());
        var audit = File.ReadAllLines(Path.Combine(_data, "audit.jsonl"));
        Assert.Contains(audit, line => line.Contains("\"outcome\":\"RESOURCE_EXHAUSTED\"", StringComparison.Ordinal));
    }

    [Fact]
    public async Task WatchesPerClient_OneTooManyIsRefused_ClosingOneFreesASlot()
    {
        // With the embedded DNS server following the silo over loopback TCP, as a client on this host
        // does: its feed's watch is the silo's own and takes none of the host's two slots.
        var (api, dns) = (Ports.FreeTcpAndUdp(21300, 21399), Ports.FreeTcpAndUdp(21400, 21499));
        await using var silo = await SiloProcess.StartAsync(_data, "--Limits:WatchesPerClient=2", "--Dns:Enabled=true", $"--Silo:Port={api}", $"--Dns:Listen=127.0.0.1:{dns}");
        await silo.WaitForLineAsync(l => l.Contains("Zone snapshot:", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        var request = new WatchRequest { Kinds = { Kind.Namespace } };
        await using var first = new WatchCollector(silo.Client, request);
        var second = new WatchCollector(silo.Client, request);
        await first.WaitForAsync(e => e.InitialEventsEnd, "the first watch's snapshot");
        await second.WaitForAsync(e => e.InitialEventsEnd, "the second watch's snapshot");

        var third = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in silo.Client.WatchAsync(request)) { }
        });
        Assert.Equal(StatusCode.ResourceExhausted, third.StatusCode);
        Assert.Contains("Limits:WatchesPerClient", third.Status.Detail);
        Assert.NotNull(third.Trailers.GetValue(LimitsInterceptor.RetryPushbackTrailer));
        Assert.Equal("TOO_MANY_WATCHES", third.GetRpcStatus()!.GetDetail<ErrorInfo>()!.Reason);

        await second.DisposeAsync();
        // The slot is released when the server sees the stream end; a refused attempt is retried after the delay it names.
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        while (true)
        {
            try
            {
                using var stop = new CancellationTokenSource();
                await foreach (var e in silo.Client.WatchAsync(request, Calls.Until(stop.Token)))
                {
                    if (e.InitialEventsEnd) break;
                }
                break;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.ResourceExhausted && !deadline.IsCancellationRequested)
            {
                await Task.Delay(int.Parse(e.Trailers.GetValue(LimitsInterceptor.RetryPushbackTrailer)!, System.Globalization.CultureInfo.InvariantCulture), deadline.Token);
            }
        }
    }

    [Fact]
    public void ClientLimiter_TokenBucket_RefillsWithTime()
    {
        var time = new FakeTimeProvider();
        var limiter = new ClientLimiter(new LimitsOptions { RequestsPerSecond = 10, Burst = 3 }, time);
        for (var i = 0; i < 3; i++) Assert.True(limiter.TryAcquire("a", out _));
        Assert.False(limiter.TryAcquire("a", out var retry));
        Assert.Equal(TimeSpan.FromMilliseconds(100), retry);
        Assert.True(limiter.TryAcquire("b", out _)); // another client has its own bucket
        time.Advance(TimeSpan.FromMilliseconds(100));
        Assert.True(limiter.TryAcquire("a", out _));
        Assert.False(limiter.TryAcquire("a", out _));
    }

    [Fact]
    public void ClientLimiter_FullTable_ForgetsIdleClientsOnly()
    {
        var time = new FakeTimeProvider();
        var limiter = new ClientLimiter(new LimitsOptions { RequestsPerSecond = 1, Burst = 1, WatchesPerClient = 1, MaxClients = 2 }, time);
        Assert.True(limiter.TryOpenWatch("watcher", out var slot));
        Assert.True(limiter.TryAcquire("busy", out _));
        Assert.True(limiter.TryAcquire("new", out _)); // table full, nothing idle: the overflow entry
        time.Advance(TimeSpan.FromSeconds(5));
        Assert.True(limiter.TryAcquire("newer", out _)); // "busy" refilled and is forgotten
        Assert.Equal(1, limiter.OpenWatches("watcher"));
        Assert.False(limiter.TryOpenWatch("watcher", out _));
        slot.Dispose();
        Assert.True(limiter.TryOpenWatch("watcher", out _));
    }

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}
