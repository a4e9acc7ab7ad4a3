using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Feed;
using ControlPlane.Dns.Wire;
using ControlPlane.Silo.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// What a readiness probe is told: a DNS server (standalone, or inside the silo) is ready only
/// once its zone answers, and a standalone one is ready again soon after the control plane it
/// follows comes back, not only at its watch's next periodic bookmark.
/// </summary>
public sealed class ReadinessTests
{
    private const string Name = "svc-7.shop.svc.cluster.local";

    [Fact]
    public async Task A_standalone_server_is_ready_only_when_its_zone_answers_and_again_within_seconds_of_the_silos_return()
    {
        await using var silo = await SocketSilo.StartAsync();
        using (var client = silo.Connect())
        {
            await CreateServicesAsync(client);
        }
        var builder = Host.CreateApplicationBuilder(["--Logging:LogLevel:Default=Warning", $"--Dns:Listen={TestPorts.Loopback()}", $"--Dns:ControlPlane=unix:{silo.Socket}"]);
        var health = new WatchHealth("dns");
        builder.Services.AddSingleton(health);
        builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
        using var dns = builder.Build();
        await dns.StartAsync();
        var handler = dns.Services.GetRequiredService<DnsListenerService>().Handler;
        try
        {
            await UntilAsync(() => health.Ready.Ready, TimeSpan.FromSeconds(20), "the server ready");
            Assert.Equal(0, Queries.Ask(handler, Name).Rcode);
            Assert.Single(Queries.Ask(handler, Name).Answer);

            await silo.StopAsync();
            await UntilAsync(() => !health.Ready.Ready, TimeSpan.FromSeconds(20), "the server to notice the silo gone");
            await silo.StartAgainAsync();
            var back = Stopwatch.StartNew();
            // Its retries are at most 5 s apart; the watch's periodic bookmark comes every 10 s.
            await UntilAsync(() => health.Ready.Ready, TimeSpan.FromSeconds(8), "the server ready again after the silo came back");
            Assert.True(back.Elapsed < TimeSpan.FromSeconds(8), $"ready again {back.Elapsed.TotalSeconds:F1} s after the silo");
            Assert.Single(Queries.Ask(handler, Name).Answer);
        }
        finally
        {
            await dns.StopAsync();
        }
    }

    [Fact]
    public async Task A_silo_with_embedded_dns_serves_only_once_its_zone_answers()
    {
        await using var silo = await SocketSilo.StartAsync("--Dns:Enabled=true", $"--Dns:Listen={TestPorts.Loopback()}");
        using (var client = silo.Connect())
        {
            await CreateServicesAsync(client);
        }
        await silo.StopAsync();
        await silo.StartAgainAsync();
        var health = silo.Services.GetRequiredService<SiloHealthCheck>();
        var handler = silo.Services.GetRequiredService<DnsListenerService>().Handler;
        await UntilAsync(() => health.Check() is null, TimeSpan.FromSeconds(20), "the silo serving");
        var answer = Queries.Ask(handler, Name);
        Assert.True(answer.Rcode == 0 && answer.Answer.Count == 1, $"the silo serves, but DNS answers rcode {answer.Rcode} with {answer.Answer.Count} records");
    }

    /// <summary>A zone large enough that building it takes a while after the list has arrived.</summary>
    private static async Task CreateServicesAsync(ControlPlaneClient client)
    {
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16" } });
        await Task.WhenAll(Enumerable.Range(0, 300).Select(i => client.Services.CreateAsync(
            new Service { Metadata = new ObjectMeta { Name = $"svc-{i}", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } })));
    }

    /// <summary>Polls <paramref name="condition"/> every millisecond (a state flip to catch, not an event to await).</summary>
    private static async Task UntilAsync(Func<bool> condition, TimeSpan timeout, string what)
    {
        var deadline = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(deadline.Elapsed < timeout, $"waited {timeout.TotalSeconds} s for {what}");
            await Task.Delay(1);
        }
    }
}
