using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns;
using ControlPlane.Dns.Feed;
using DnsClient;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// Convergence-aware DNS (Dns:WaitForProgrammed): a client that connects the moment a new name
/// resolves never finds the data path behind it missing. Two DNS servers follow the same silo,
/// one waiting for the nodes and one not; each cycle attaches a new pod on host 3, puts a new
/// ClusterIP service in front of it, resolves the service's name from the test (DnsClient, as
/// fast as it can ask) and connects from a pod on host 1 as soon as it resolves.
/// </summary>
[Collection("policy")]
public sealed class ConvergentDnsTests(PolicyCluster bed)
{
    [Fact]
    public async Task A_new_service_name_resolves_only_once_every_node_can_reach_it()
    {
        await bed.ClearPoliciesAsync();
        await using var waiting = await DnsAsync(wait: true);
        await using var eager = await DnsAsync(wait: false);
        var on = await CyclesAsync(waiting, "cw", 200);
        var off = await CyclesAsync(eager, "ce", 200);
        Console.WriteLine($"convergence-aware DNS: {on.Failed} of 200 connections failed, {on.Retransmits} needed a SYN retransmit (resolved after p50 {on.P50:F0} ms, p99 {on.P99:F0} ms); "
            + $"without it: {off.Failed} of 200 failed, {off.Retransmits} needed a SYN retransmit (p50 {off.P50:F0} ms)");
        Assert.True(on.Failed == 0, string.Join('\n', on.Failures));
    }

    private async Task<(int Failed, double P50, double P99, List<string> Failures, int Retransmits)> CyclesAsync(Server dns, string prefix, int cycles)
    {
        var client = bed.Cluster.Client;
        var source = bed.Pod("y", "a");
        Assert.Equal(1, source.Host);
        var resolver = new LookupClient(new LookupClientOptions(new NameServer(dns.Endpoint)) { UseCache = false, Timeout = TimeSpan.FromSeconds(1), Retries = 0, ThrowDnsErrors = false });
        var failed = 0;
        var failures = new List<string>();
        var retransmits = 0;
        var resolvedAfter = new List<double>();
        for (var i = 0; i < cycles; i++)
        {
            var name = $"{prefix}{i}";
            var attached = await bed.Cluster.AttachAsync(3, name, "net", labels: new Dictionary<string, string> { ["app"] = name }, ns: "x");
            var netns = "/var/run/netns/" + bed.Cluster.Pod("x" + name);
            bed.Servers.Serve(netns, "x/" + name, 80, AddressFamily.InterNetwork);
            var clock = Stopwatch.StartNew();
            var service = await client.Services.CreateAsync(new Service
            {
                Metadata = new ObjectMeta { Namespace = "x", Name = name },
                Spec = new ServiceSpec { Network = "net", Selector = { ["app"] = name }, Ports = { new ServicePort { Port = 80, Protocol = Protocol.Tcp, TargetPortNumber = 80 } } },
            });
            string? address = null;
            while (address is null)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"{name} did not resolve within 30 s");
                var response = await resolver.QueryAsync($"{name}.x.svc.cluster.local", QueryType.A);
                address = response.Answers.ARecords().FirstOrDefault()?.Address.ToString();
            }
            resolvedAfter.Add(clock.Elapsed.TotalMilliseconds);
            Assert.Equal(service.Status.ClusterIps[0], address);
            var result = await ConnectAsync(source.Netns, address, $"x/{name} ");
            if (result == "answered after a SYN retransmit")
            {
                retransmits++;
                Console.WriteLine($"{name}: {result}");
            }
            else if (result != "answered")
            {
                failed++;
                var nodes = (await client.ConvergenceStatusAsync()).Nodes.Select(n => $"{n.Name} ready={n.Ready} counted={n.Counted} reported {n.SecondsSinceReport:F1}s ago");
                var elapsed = clock.ElapsedMilliseconds;
                var retry = Stopwatch.StartNew();
                var again = await ConnectAsync(source.Netns, address, $"x/{name} ");
                var rules = Shell.Run("ip", "-n", bed.Cluster.Host(3), "rule").Output.Split('\n').Count(l => l.Contains("iif cpe", StringComparison.Ordinal));
                var vip = Shell.Run("ip", "netns", "exec", bed.Cluster.Host(1), "nft", "list", "table", "inet", "controlplane").Output.Contains(address, StringComparison.Ordinal);
                failures.Add($"{name}: {result} at {address}:80, {elapsed} ms after the create; again: {again} after {retry.ElapsedMilliseconds} ms; host-3 iif rules {rules}; VIP on host-1 {vip}; {string.Join(", ", nodes)}");
                Console.WriteLine(failures[^1]);
            }
            await client.Services.DeleteAsync("x", name);
            bed.Servers.Stop("x/" + name);
            await bed.Cluster.DetachAsync(3, name, "x");
            bed.Cluster.RemovePod(bed.Cluster.Pod("x" + name));
        }
        resolvedAfter.Sort();
        return (failed, resolvedAfter[resolvedAfter.Count / 2], resolvedAfter[(int)(resolvedAfter.Count * 0.99)], failures, retransmits);
    }

    /// <summary>
    /// A TCP connection from the namespace to the service, as a client's connect() makes it: 3 s,
    /// which lets the kernel retransmit a lost SYN once (after 1 s); then the server's answer (5 s:
    /// the test's own server may be slow to accept under load), which must name the new pod.
    /// Returns "answered" (noting a connect that needed the retransmit) or which step failed and how.
    /// </summary>
    private static async Task<string> ConnectAsync(string netns, string address, string expected)
    {
        using var socket = PodSockets.Create(netns, AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var clock = Stopwatch.StartNew();
        try
        {
            using (var connect = new CancellationTokenSource(TimeSpan.FromSeconds(3)))
                await socket.ConnectAsync(new IPEndPoint(IPAddress.Parse(address), 80), connect.Token);
        }
        catch (OperationCanceledException) { return "connect timed out"; }
        catch (SocketException e) { return "connect failed: " + e.SocketErrorCode; }
        try
        {
            using var answer = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            var buffer = new byte[256];
            var total = 0;
            int read;
            while ((read = await socket.ReceiveAsync(buffer.AsMemory(total), answer.Token)) > 0) total += read;
            var text = System.Text.Encoding.ASCII.GetString(buffer, 0, total);
            if (!text.StartsWith(expected, StringComparison.Ordinal)) return $"connected, but answered '{text}'";
            return clock.Elapsed < TimeSpan.FromMilliseconds(900) ? "answered" : "answered after a SYN retransmit";
        }
        catch (OperationCanceledException) { return "connected, but no answer within 5 s"; }
        catch (SocketException e) { return "connected, then " + e.SocketErrorCode; }
    }

    private async Task<Server> DnsAsync(bool wait)
    {
        var builder = Host.CreateApplicationBuilder(["--Logging:LogLevel:Default=Warning", "--Dns:Listen=127.0.0.1:0",
            $"--Dns:ControlPlane=unix:{bed.Cluster.SiloSocket}", $"--Dns:WaitForProgrammed={wait}"]);
        builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
        var host = builder.Build();
        await host.StartAsync();
        await host.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
        return new Server(host, host.Services.GetRequiredService<DnsListenerService>().LocalEndPoint!);
    }

    private sealed record Server(IHost Host, IPEndPoint Endpoint) : IAsyncDisposable
    {
        public async ValueTask DisposeAsync()
        {
            await Host.StopAsync();
            Host.Dispose();
        }
    }
}
