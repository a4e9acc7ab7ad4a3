using System.Diagnostics;
using System.Net.Sockets;
using ControlPlane.Contracts.V1;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// Who a virtual IP answers, in both families: its own network only (not another network, not a
/// host on the underlay that routes the service range to a node), a port it does not serve is
/// refused at once, and a service that publishes not-ready addresses sends to them too.
/// Two hosts; network blue (server s1 on host 1, s2 on host 2, client c1 on host 1) and network
/// red (client r1 on host 1); a host "outside" on the underlay (v4 10.99.0.200, v6 fd99::200)
/// routing the VIPs to host 1.
/// </summary>
public sealed class ServiceReachTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(1);

    private sealed class Setup : ServedCluster
    {
        public Dictionary<string, string[]> Vips { get; } = [];
        public string Outside { get; set; } = "";
    }

    private static Service DualStack(string name, bool publishNotReady = false, string selector = "echo") => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "default" },
        Spec = new ServiceSpec
        {
            Network = "blue", Selector = { ["app"] = selector }, IpFamilyPolicy = "RequireDualStack", PublishNotReadyAddresses = publishNotReady,
            Ports =
            {
                new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80, TargetPortNumber = 8080 },
                new ServicePort { Name = "dns", Protocol = Protocol.Udp, Port = 53, TargetPortNumber = 8080 },
            },
        },
    };

    private static async Task<Setup> StartAsync()
    {
        var setup = new Setup { Cluster = await Cluster.StartAsync(new Cluster.Layout(2, SiloArgs: ["--ControlPlane:ServiceIpv6Cidr=fd00:96::/108"], Prefix: "ws")) };
        try
        {
            var cluster = setup.Cluster;
            var client = cluster.Client;
            await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
            await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16", Ipv6Cidr = "fd00:20::/64" } });
            await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "red" }, Spec = new NetworkSpec { Vni = 200, Ipv4Cidr = "10.30.0.0/16", Ipv6Cidr = "fd00:30::/64" } });
            for (var n = 1; n <= 2; n++)
            {
                await cluster.AttachAsync(n, $"s{n}", "blue", labels: new Dictionary<string, string> { ["app"] = "echo" });
                setup.Servers.Serve(setup.Pod($"s{n}"), $"s{n}", 8080);
                setup.Servers.Serve(setup.Pod($"s{n}"), $"s{n}", 8080, AddressFamily.InterNetworkV6);
            }
            await cluster.AttachAsync(1, "c1", "blue");
            await cluster.AttachAsync(1, "r1", "red");
            foreach (var name in new[] { "echo", "empty" })
            {
                var service = await client.Services.CreateAsync(DualStack(name, selector: name == "echo" ? "echo" : "nothing"));
                setup.Vips[name] = [.. service.Status.ClusterIps];
            }
            Assert.Equal(2, setup.Vips["echo"].Length);

            // The underlay host routes both VIPs to host 1 (the tester's `10.96.0.0/16 via <node>`).
            setup.Outside = cluster.AddOutside();
            var outside = setup.Outside;
            Shell.Must("ip", "-n", outside, "addr", "add", "fd99::200/64", "dev", "eth0", "nodad");
            Shell.Must("ip", "-n", cluster.Host(1), "addr", "add", "fd99::1/64", "dev", "eth0", "nodad");
            Shell.Must("ip", "-n", outside, "route", "add", setup.Vips["echo"][0] + "/32", "via", cluster.HostAddress(1));
            Shell.Must("ip", "-n", outside, "-6", "route", "add", setup.Vips["echo"][1] + "/128", "via", "fd99::1");

            // Programmed: c1 reaches both servers through each VIP.
            foreach (var vip in setup.Vips["echo"])
            {
                await Eventually.HoldsAsync(async () => (await ServersReachedAsync(setup, "c1", vip, 20)).Count == 2, TimeSpan.FromSeconds(20),
                    () => $"c1 does not reach both servers through {vip}\n{cluster.Ruleset(1)}\n{cluster.Log(1)}");
            }
            return setup;
        }
        catch
        {
            await setup.DisposeAsync();
            throw;
        }
    }

    /// <summary>The servers that answered <paramref name="count"/> TCP connections from a pod to a VIP:80.</summary>
    private static async Task<HashSet<string>> ServersReachedAsync(Setup setup, string from, string vip, int count)
    {
        var answers = await Task.WhenAll(Enumerable.Range(0, count).Select(_ => PodSockets.TcpAsync(setup.Pod(from), vip, 80, Short)));
        return answers.Where(a => a.Result == ProbeResult.Answered).Select(a => a.Answer.Split(' ')[0]).ToHashSet();
    }

    /// <summary>TCP to port 80 and UDP to port 53 of a VIP, <paramref name="count"/> of each at once from <paramref name="netns"/>.</summary>
    private static async Task<List<(string Probe, ProbeResult Result, string Answer)>> ProbeAsync(string netns, string vip, int count)
    {
        var tcp = Enumerable.Range(0, count).Select(async _ => ("tcp", await PodSockets.TcpAsync(netns, vip, 80, Short)));
        var udp = Enumerable.Range(0, count).Select(async _ => ("udp", await PodSockets.UdpAsync(netns, vip, 53, Short)));
        return [.. (await Task.WhenAll(tcp.Concat(udp))).Select(p => (p.Item1, p.Item2.Result, p.Item2.Answer))];
    }

    [Fact]
    public async Task Vip_IsDroppedForTheUnderlayAndOtherNetworks_WithOrWithoutEndpoints_BothFamilies()
    {
        await using var setup = await StartAsync();
        var cluster = setup.Cluster;

        // A host on the underlay that routes the VIP to host 1 gets nothing: not s1 on host 1,
        // not s2 on host 2 (whose reply could never be un-NATed). 12 tries of each protocol: each
        // server would have been chosen about half the time.
        for (var family = 0; family < 2; family++)
        {
            var vip = setup.Vips["echo"][family];
            var probes = await ProbeAsync("/var/run/netns/" + setup.Outside, vip, 12);
            Assert.True(probes.All(p => p.Result == ProbeResult.TimedOut),
                $"the underlay reached {vip}: {string.Join(", ", probes.Select(p => $"{p.Probe} {p.Result} {p.Answer}"))}\n{cluster.Ruleset(1)}");
        }

        // Another network: a VIP with endpoints and one without look alike, nothing answers (no
        // reset revealing the VIP without endpoints).
        foreach (var name in new[] { "echo", "empty" })
        {
            foreach (var vip in setup.Vips[name])
            {
                var probes = await ProbeAsync(setup.Pod("r1"), vip, 3);
                Assert.True(probes.All(p => p.Result == ProbeResult.TimedOut),
                    $"red's r1 → {name} {vip}: {string.Join(", ", probes.Select(p => $"{p.Probe} {p.Result} {p.Answer}"))}\n{cluster.Ruleset(1)}");
            }
        }

        // The VIP's own network still gets its answers and its resets.
        foreach (var vip in setup.Vips["empty"])
        {
            Assert.All(await ProbeAsync(setup.Pod("c1"), vip, 2), p => Assert.Equal(ProbeResult.Refused, p.Result));
        }
        foreach (var vip in setup.Vips["echo"])
        {
            Assert.All(await ProbeAsync(setup.Pod("c1"), vip, 4), p => Assert.Equal(ProbeResult.Answered, p.Result));
        }
    }

    [Fact]
    public async Task PortTheServiceDoesNotServe_IsRefusedAtOnce_FromItsOwnNetwork_BothFamilies()
    {
        await using var setup = await StartAsync();
        foreach (var vip in setup.Vips["echo"])
        {
            var c1 = setup.Pod("c1");
            var timeout = TimeSpan.FromSeconds(3);
            var probes = new[]
            {
                ("tcp 81", await PodSockets.TimedAsync(() => PodSockets.TcpAsync(c1, vip, 81, timeout))),
                ("udp 54", await PodSockets.TimedAsync(() => PodSockets.UdpAsync(c1, vip, 54, timeout))),
                // UDP to the TCP port and TCP to the UDP port are ports it does not serve either.
                ("udp 80", await PodSockets.TimedAsync(() => PodSockets.UdpAsync(c1, vip, 80, timeout))),
                ("tcp 53", await PodSockets.TimedAsync(() => PodSockets.TcpAsync(c1, vip, 53, timeout))),
            }.Select(p => (Probe: p.Item1, p.Item2.Result, p.Item2.Took)).ToList();
            var shown = string.Join(", ", probes.Select(p => $"{p.Probe} {p.Result} in {p.Took.TotalMilliseconds:F0} ms"));
            Assert.True(probes.All(p => p.Result == ProbeResult.Refused), $"{vip}: {shown}\n{setup.Cluster.Ruleset(1)}");
            Assert.True(probes.All(p => p.Took < TimeSpan.FromSeconds(1)), $"{vip}: not refused at once: {shown}");
        }
    }

    [Fact]
    public async Task PublishNotReadyAddresses_SendsToNotReadyEndpointsToo_BothFamilies()
    {
        await using var setup = await StartAsync();
        var cluster = setup.Cluster;
        var all = await cluster.Client.Services.CreateAsync(DualStack("all", publishNotReady: true));

        var s2 = await cluster.Client.Endpoints.GetAsync("default", "s2");
        s2.Spec.Ready = false;
        await cluster.Client.Endpoints.UpdateAsync(s2);
        // The ordinary service stops sending to s2 (the change is programmed on host 1) ...
        foreach (var vip in setup.Vips["echo"])
        {
            await Eventually.HoldsAsync(async () => !(await ServersReachedAsync(setup, "c1", vip, 20)).Contains("s2"), TimeSpan.FromSeconds(10),
                () => $"{vip} still sends to the not-ready s2\n{cluster.Ruleset(1)}");
        }
        // ... the one that publishes not-ready addresses keeps both.
        foreach (var vip in all.Status.ClusterIps)
        {
            await Eventually.HoldsAsync(async () => (await ServersReachedAsync(setup, "c1", vip, 20)).SetEquals(["s1", "s2"]), TimeSpan.FromSeconds(10),
                () => $"{vip} (publish_not_ready_addresses) does not reach both s1 and the not-ready s2\n{cluster.Ruleset(1)}");
        }
    }
}
