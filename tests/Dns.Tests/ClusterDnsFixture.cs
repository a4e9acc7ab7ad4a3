using System.Diagnostics;
using System.Net;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Feed;
using ControlPlane.Silo.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// A silo and a DNS server fed by its Watch stream, both in this process on loopback, with a
/// namespace "shop", a node and a dual-stack network "blue" (10.244.0.0/16, fd00:244::/64).
/// </summary>
internal sealed class ClusterDns : IAsyncDisposable
{
    private readonly WebApplication _silo;
    private readonly string _data;
    private readonly string[] _dnsArgs;
    private IHost _dns;

    private ClusterDns(WebApplication silo, IHost dns, string[] dnsArgs, string data, ControlPlaneClient client, IPEndPoint endpoint, string siloAddress)
    {
        SiloAddress = siloAddress;
        _silo = silo;
        _dns = dns;
        _dnsArgs = dnsArgs;
        _data = data;
        Client = client;
        Endpoint = endpoint;
    }

    /// <summary>The silo's service ranges (dual-stack, so services of either or both families exist).</summary>
    public const string ServiceIpv4Range = "10.96.0.0/16";

    public const string ServiceIpv6Range = "fd00:96::/112";

    public ControlPlaneClient Client { get; }

    /// <summary>The silo's API address (for a peer cluster's ClusterPeer).</summary>
    public string SiloAddress { get; }

    public IPEndPoint Endpoint { get; }

    public Handling.QueryHandler Handler => _dns.Services.GetRequiredService<DnsListenerService>().Handler;

    public static Task<ClusterDns> StartAsync(params string[] dnsSettings) => StartWithSiloAsync([], dnsSettings);

    /// <param name="siloSettings">Further settings of the silo (its ClusterSet identity, say).</param>
    public static async Task<ClusterDns> StartWithSiloAsync(string[] siloSettings, params string[] dnsSettings)
    {
        var data = Path.Combine("/tmp", "dnsw-" + Guid.NewGuid().ToString("N"));
        var silo = SiloApp.Build([$"--Silo:Port={TestPorts.Next()}", $"--Cluster:SiloPort={TestPorts.Next()}", $"--Silo:DataDirectory={data}", "--Logging:LogLevel:Default=Warning", "--Dns:Enabled=false",
            $"--ControlPlane:ServiceIpv4Cidr={ServiceIpv4Range}", $"--ControlPlane:ServiceIpv6Cidr={ServiceIpv6Range}", .. siloSettings]);
        await silo.StartAsync();
        var address = silo.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        // The DNS server is told the silo's service ranges, unless the test sets its own.
        string[] ranges = dnsSettings.Any(s => s.StartsWith("--Dns:ServiceRanges", StringComparison.Ordinal)) ? []
            : [$"--Dns:ServiceRanges:0={ServiceIpv4Range}", $"--Dns:ServiceRanges:1={ServiceIpv6Range}"];
        string[] dnsArgs = ["--Logging:LogLevel:Default=Warning", $"--Dns:Listen={TestPorts.Loopback()}", $"--Dns:ControlPlane={address}", .. ranges, .. dnsSettings];
        var dns = await StartDnsAsync(dnsArgs);
        var endpoint = dns.Services.GetRequiredService<DnsListenerService>().LocalEndPoint!;
        var client = new ControlPlaneClient(new Uri(address));
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = "node-a" }, Spec = new NodeSpec { UnderlayIp = "10.255.0.1" } });
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16", Ipv6Cidr = "fd00:244::/64" } });
        return new ClusterDns(silo, dns, dnsArgs, data, client, endpoint, address);
    }

    private static async Task<IHost> StartDnsAsync(string[] args)
    {
        var builder = Host.CreateApplicationBuilder(args);
        builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
        var dns = builder.Build();
        await dns.StartAsync();
        await dns.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
        return dns;
    }

    /// <summary>Stops the DNS server and starts a new one on the same address, as a restart does; returns once it serves its first snapshot.</summary>
    public async Task RestartDnsAsync()
    {
        await _dns.StopAsync();
        _dns.Dispose();
        _dns = await StartDnsAsync(_dnsArgs);
    }

    /// <summary>Runs dig (or kdig) against the server and returns its output.</summary>
    public Task<string> DigAsync(string tool, params string[] args) => Dig.RunAsync(Endpoint, tool, args);

    /// <summary>Runs dig (or kdig) against the server and parses its output.</summary>
    public async Task<DigOutput> AskAsync(string tool, params string[] args) => Dig.Parse(await Dig.RunAsync(Endpoint, tool, args));

    /// <summary>
    /// Waits until the server's answer for the name satisfies <paramref name="done"/>, checking
    /// after every zone swap (the feed is asynchronous); returns how long that took.
    /// </summary>
    public async Task<TimeSpan> AwaitAnswerAsync(string name, Wire.DnsType type, Func<DecodedResponse, bool> done, int timeoutMs = 5000)
    {
        var clock = Stopwatch.StartNew();
        var buffer = new byte[4096];
        var swapped = new SemaphoreSlim(0);
        void OnSwap(Zones.ZoneSnapshot _) => swapped.Release();
        Handler.Swapped += OnSwap;
        try
        {
            while (true)
            {
                var length = Handler.Handle(Queries.Build(name, type, ednsSize: 4096), buffer, tcp: false);
                if (done(DecodedResponse.Decode(buffer.AsSpan(0, length)))) return clock.Elapsed;
                var left = timeoutMs - (int)clock.ElapsedMilliseconds;
                if (left <= 0 || !await swapped.WaitAsync(left))
                {
                    throw new TimeoutException($"{name} {type}: not answered as expected within {timeoutMs} ms");
                }
            }
        }
        finally
        {
            Handler.Swapped -= OnSwap;
        }
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _dns.StopAsync();
        _dns.Dispose();
        await _silo.StopAsync();
        await _silo.DisposeAsync();
        Directory.Delete(_data, recursive: true);
    }
}
