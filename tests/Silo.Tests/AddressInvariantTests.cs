using System.Collections.Concurrent;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// No address is ever held by two live objects, across restarts. The defect this guards: after a
/// restart, a delete's late release reached a freshly rebuilt allocator and freed an address
/// that had been handed out again in between, so the next create got it a second time.
/// </summary>
public sealed class AddressInvariantTests : IDisposable
{
    private const int Rounds = 10;
    private const int PerRound = 10;
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-held-" + Guid.NewGuid().ToString("N"));

    [Fact]
    public async Task AHundredDeleteCreateRaces_AcrossRestarts_NeverGiveOneAddressToTwoObjects()
    {
        // A small service range and network keep addresses reused, as in the reported defect.
        string[] settings = ["--ControlPlane:ServiceIpv4Cidr=10.96.0.0/24"];
        var silo = await SiloProcess.StartAsync(_data, settings);
        try
        {
            await SeedAsync(silo.Client, cidr: "10.60.0.0/24", block: 24);
            for (var round = 0; round < Rounds; round++)
            {
                await Task.WhenAll(Enumerable.Range(0, PerRound).Select(i => Task.WhenAll(
                    silo.Client.Services.CreateAsync(Service("ns", $"a{round}-{i}", "net")),
                    silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"a{round}-{i}", "net", "node-a")))));

                // A graceful restart (SIGTERM): every allocator starts again from the store.
                var output = await silo.TerminateAsync();
                Assert.DoesNotContain(output, line => line.Contains("fail:", StringComparison.Ordinal) || line.Contains("crit:", StringComparison.Ordinal));
                await silo.DisposeAsync();
                silo = await SiloProcess.StartAsync(_data, settings);

                // In parallel: delete a, create c; then create d.
                await Task.WhenAll(Enumerable.Range(0, PerRound).Select(async i =>
                {
                    await Task.WhenAll(
                        silo.Client.Services.DeleteAsync("ns", $"a{round}-{i}"),
                        silo.Client.Services.CreateAsync(Service("ns", $"c{round}-{i}", "net")),
                        silo.Client.Endpoints.DeleteAsync("ns", $"a{round}-{i}"),
                        silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"c{round}-{i}", "net", "node-a")));
                    await Task.WhenAll(
                        silo.Client.Services.CreateAsync(Service("ns", $"d{round}-{i}", "net")),
                        silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"d{round}-{i}", "net", "node-a")));
                }));
                await AssertEveryAddressHeldOnceAsync(silo.Client, round);

                // Make room for the next round: c and d go too, so addresses keep being reused.
                await Task.WhenAll(Enumerable.Range(0, PerRound).SelectMany(i => new[] { "c", "d" }.SelectMany(p => new[]
                {
                    silo.Client.Services.DeleteAsync("ns", $"{p}{round}-{i}"),
                    silo.Client.Endpoints.DeleteAsync("ns", $"{p}{round}-{i}"),
                })));
            }
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    /// <summary>
    /// An address given back is not handed out again at once after a restart either (DNS clients
    /// still cache it, conntrack may still send to it): allocation goes on after the highest held
    /// address, as round-robin would have, rather than from the lowest free one.
    /// </summary>
    [Fact]
    public async Task AfterARestart_TheAddressesJustGivenBack_AreNotTheNextHandedOut()
    {
        var silo = await SiloProcess.StartAsync(_data);
        try
        {
            await SeedAsync(silo.Client, cidr: "10.61.0.0/24", block: 26);
            var vips = new List<string>();
            var ips = new List<string>();
            for (var i = 0; i < 3; i++)
            {
                vips.Add((await silo.Client.Services.CreateAsync(Service("ns", $"s{i}", "net"))).Status.ClusterIps[0]);
                ips.Add((await silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"e{i}", "net", "node-a"))).Status.Ips[0]);
            }
            await silo.Client.Services.DeleteAsync("ns", "s0");
            await silo.Client.Endpoints.DeleteAsync("ns", "e0");

            await silo.TerminateAsync();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(_data);

            var vip = (await silo.Client.Services.CreateAsync(Service("ns", "s3", "net"))).Status.ClusterIps[0];
            var ip = (await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "e3", "net", "node-a"))).Status.Ips[0];
            Assert.Equal(Next(vips[2]), vip);
            Assert.Equal(Next(ips[2]), ip);
        }
        finally
        {
            await silo.DisposeAsync();
        }

        static string Next(string address)
        {
            var bytes = System.Net.IPAddress.Parse(address).GetAddressBytes();
            bytes[^1]++;
            return new System.Net.IPAddress(bytes).ToString();
        }
    }

    private static async Task AssertEveryAddressHeldOnceAsync(ControlPlaneClient client, int round)
    {
        var services = (await client.Services.ListAsync(new ListRequest { Namespace = "ns", PageSize = 1000 })).Services;
        var endpoints = (await client.Endpoints.ListAsync(new ListRequest { Namespace = "ns", PageSize = 1000 })).Endpoints;
        var vips = services.SelectMany(s => s.Status.ClusterIps.Select(ip => (ip, s.Metadata.Name))).ToList();
        var ips = endpoints.SelectMany(e => e.Status.Ips.Select(ip => (ip, e.Metadata.Name))).ToList();
        foreach (var (kind, held) in new[] { ("service VIP", vips), ("endpoint address", ips) })
        {
            var twice = held.GroupBy(h => h.ip).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(h => h.Name))}").ToList();
            Assert.True(twice.Count == 0, $"round {round}: a {kind} held twice: {string.Join("; ", twice)}");
        }
        Assert.Equal(2 * PerRound, services.Count);
        Assert.Equal(2 * PerRound, endpoints.Count);
    }

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}
