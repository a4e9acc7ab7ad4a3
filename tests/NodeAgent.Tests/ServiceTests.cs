using System.Diagnostics;
using System.Net.Sockets;
using ControlPlane.Contracts.V1;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// Service virtual IPs through the agents' nftables tables, with real TCP and UDP connections
/// between workload namespaces on three hosts. Servers answer "name peer-address".
/// </summary>
public sealed class ServiceTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(1);

    private sealed class Setup : ServedCluster
    {
        public Dictionary<string, string> Ips { get; } = [];
    }

    /// <summary>
    /// Three hosts; on host n a server sn (label app=echo; named port "http" is 8080, but 9090 on
    /// s3; UDP 8053) and a client cn. Service "echo": TCP 80 → "http", UDP 53 → 8053.
    /// </summary>
    private static async Task<Setup> StartAsync(SessionAffinity affinity = SessionAffinity.None, string[]? siloArgs = null)
    {
        var setup = new Setup { Cluster = await Cluster.StartAsync(new Cluster.Layout(3, SiloArgs: siloArgs)) };
        try
        {
            var client = setup.Cluster.Client;
            await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
            await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });
            for (var n = 1; n <= 3; n++)
            {
                var http = n == 3 ? 9090 : 8080;
                var server = await setup.Cluster.AttachAsync(n, $"s{n}", "blue", labels: new Dictionary<string, string> { ["app"] = "echo" },
                    ports: [new NamedPort { Name = "http", Protocol = Protocol.Tcp, Port = (uint)http }]);
                setup.Ips[$"s{n}"] = server.Ips[0];
                setup.Servers.Serve(setup.Pod($"s{n}"), $"s{n}", http);
                setup.Servers.Serve(setup.Pod($"s{n}"), $"s{n}", 8053);
                setup.Ips[$"c{n}"] = (await setup.Cluster.AttachAsync(n, $"c{n}", "blue")).Ips[0];
            }
            var service = await client.Services.CreateAsync(new Service
            {
                Metadata = new ObjectMeta { Name = "echo", Namespace = "default" },
                Spec = new ServiceSpec
                {
                    Network = "blue", Selector = { ["app"] = "echo" }, SessionAffinity = affinity, SessionAffinityTimeoutSeconds = affinity == SessionAffinity.ClientIp ? 60u : 0,
                    Ports =
                    {
                        new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80, TargetPortName = "http" },
                        new ServicePort { Name = "dns", Protocol = Protocol.Udp, Port = 53, TargetPortNumber = 8053 },
                    },
                },
            });
            setup.Ips["echo"] = service.Status.ClusterIps[0];
            // Programmed everywhere: every client reaches every server through the VIP.
            for (var n = 1; n <= 3; n++)
            {
                // (with affinity each client sticks to one of them)
                var wanted = affinity == SessionAffinity.ClientIp ? 1 : 3;
                await Eventually.HoldsAsync(async () => (await SpreadAsync(setup, $"c{n}", 30)).Tcp.Count == wanted, TimeSpan.FromSeconds(15),
                    () => $"c{n} does not reach {wanted} servers through {setup.Ips["echo"]}\n{setup.Cluster.Ruleset(n)}\n{setup.Cluster.Diagnostics($"c{n}")}");
            }
            return setup;
        }
        catch
        {
            await setup.DisposeAsync();
            throw;
        }
    }

    /// <summary>Connections (TCP) and requests on new flows (UDP) from a client to the VIP: answers by server.</summary>
    private static async Task<(Dictionary<string, int> Tcp, Dictionary<string, int> Udp, List<string> Peers, int Failures)> SpreadAsync(Setup setup, string from, int count)
    {
        var tcp = new Dictionary<string, int>();
        var udp = new Dictionary<string, int>();
        var peers = new List<string>();
        var failures = 0;
        for (var batch = 0; batch < count; batch += 25)
        {
            var probes = Enumerable.Range(0, Math.Min(25, count - batch)).Select(async _ =>
                (await PodSockets.TcpAsync(setup.Pod(from), setup.Ips["echo"], 80, Short), await PodSockets.UdpAsync(setup.Pod(from), setup.Ips["echo"], 53, Short)));
            foreach (var (t, u) in await Task.WhenAll(probes))
            {
                if (t.Result == ProbeResult.Answered) { Count(tcp, t.Answer.Split(' ')[0]); peers.Add(t.Answer.Split(' ')[1]); } else failures++;
                if (u.Result == ProbeResult.Answered) Count(udp, u.Answer.Split(' ')[0]); else failures++;
            }
        }
        return (tcp, udp, peers, failures);
    }

    private static void Count(Dictionary<string, int> counts, string key) => counts[key] = counts.GetValueOrDefault(key) + 1;

    [Fact]
    public async Task ClusterIp_SpreadsEvenlyOverEndpointsOnThreeHosts_FromEveryHost()
    {
        await using var setup = await StartAsync();

        for (var n = 1; n <= 3; n++)
        {
            var (tcp, udp, peers, failures) = await SpreadAsync(setup, $"c{n}", 300);
            var shown = $"from c{n}: tcp {string.Join(", ", tcp)}; udp {string.Join(", ", udp)}";
            Assert.Equal(0, failures);
            foreach (var server in new[] { "s1", "s2", "s3" })
            {
                Assert.True(tcp.GetValueOrDefault(server) >= 60, shown); // at least 20% each
                Assert.True(udp.GetValueOrDefault(server) >= 60, shown);
            }
            // Between endpoints the source address is kept (no masquerade), across hosts too.
            Assert.All(peers, p => Assert.Equal(setup.Ips[$"c{n}"], p));
        }
        // s3's "http" is 9090: the named port was resolved per endpoint (s3 answered above).
    }

    [Fact]
    public async Task Hairpin_Egress_Isolation_AndNoEndpointsRejectsAtOnce()
    {
        await using var setup = await StartAsync();
        var cluster = setup.Cluster;

        // An endpoint reaching its own service reaches itself too (masqueraded so the reply returns).
        var self = 0;
        for (var i = 0; i < 40; i++)
        {
            var (result, answer) = await PodSockets.TcpAsync(setup.Pod("s1"), setup.Ips["echo"], 80, Short);
            Assert.Equal(ProbeResult.Answered, result);
            if (answer.StartsWith("s1 ", StringComparison.Ordinal)) self++;
        }
        Assert.True(self > 0, "s1 never reached itself through the VIP");

        // Outside all networks: the connection leaves masqueraded as the host's underlay address.
        var outside = cluster.AddOutside();
        setup.Servers.Serve("/var/run/netns/" + outside, "outside", 7000);
        for (var n = 1; n <= 3; n++)
        {
            var (result, answer) = await PodSockets.TcpAsync(setup.Pod($"c{n}"), "10.99.0.200", 7000, TimeSpan.FromSeconds(3));
            Assert.True(result == ProbeResult.Answered, $"c{n} → outside: {result}\n{cluster.Diagnostics($"c{n}")}");
            Assert.Equal($"outside 10.99.0.{n}", answer);
        }

        // Another network does not reach the service's VIP.
        await cluster.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "red" }, Spec = new NetworkSpec { Vni = 200, Ipv4Cidr = "10.30.0.0/16" } });
        await cluster.AttachAsync(1, "r1", "red");
        await cluster.AttachAsync(2, "r2", "red");
        Assert.True(cluster.Ping("r1", (await cluster.Client.Endpoints.GetAsync("default", "r2")).Status.Ips[0], TimeSpan.FromSeconds(10)), cluster.Diagnostics("r1"));
        for (var i = 0; i < 10; i++)
        {
            var (result, answer) = await PodSockets.TcpAsync(setup.Pod("r1"), setup.Ips["echo"], 80, Short);
            Assert.True(result != ProbeResult.Answered, $"red reached blue's service: {answer}");
        }

        // No endpoints: TCP is reset and UDP gets port unreachable, at once.
        var empty = await cluster.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "empty", Namespace = "default" },
            Spec = new ServiceSpec
            {
                Network = "blue", Selector = { ["app"] = "nothing" },
                Ports = { new ServicePort { Name = "web", Protocol = Protocol.Tcp, Port = 80 }, new ServicePort { Name = "dns", Protocol = Protocol.Udp, Port = 53 } },
            },
        });
        var vip = empty.Status.ClusterIps[0];
        await Eventually.HoldsAsync(async () => (await PodSockets.TcpAsync(setup.Pod("c2"), vip, 80, Short)).Result == ProbeResult.Refused,
            TimeSpan.FromSeconds(5), () => cluster.Ruleset(2));
        foreach (var (result, took) in new[]
        {
            await PodSockets.TimedAsync(() => PodSockets.TcpAsync(setup.Pod("c2"), vip, 80, TimeSpan.FromSeconds(3))),
            await PodSockets.TimedAsync(() => PodSockets.UdpAsync(setup.Pod("c2"), vip, 53, TimeSpan.FromSeconds(3))),
        })
        {
            Assert.Equal(ProbeResult.Refused, result);
            Assert.True(took < TimeSpan.FromSeconds(1), $"rejection took {took}");
        }
    }

    [Fact]
    public async Task NotReadyOrDeletedEndpoint_GetsNoNewConnectionWithinOneSecond_AndReturns()
    {
        await using var setup = await StartAsync();
        var cluster = setup.Cluster;

        // A UDP flow sticks to one server (conntrack); when that server turns not ready, the flow moves.
        using var flow = PodSockets.Create(setup.Pod("c1"), AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var first = await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow);
        var target = first.Answer.Split(' ')[0];
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal(target, (await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow)).Answer.Split(' ')[0]);
        }

        var endpoint = await cluster.Client.Endpoints.GetAsync("default", target);
        endpoint.Spec.Ready = false;
        await cluster.Client.Endpoints.UpdateAsync(endpoint);
        var changed = Stopwatch.StartNew();
        var lastHit = await LastHitAsync(setup, target, changed);
        Assert.True(lastHit < TimeSpan.FromSeconds(1), $"{target} still got new connections {lastHit} after turning not ready");
        var moved = await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow);
        Assert.Equal(ProbeResult.Answered, moved.Result);
        Assert.NotEqual(target, moved.Answer.Split(' ')[0]);

        endpoint = await cluster.Client.Endpoints.GetAsync("default", target);
        endpoint.Spec.Ready = true;
        await cluster.Client.Endpoints.UpdateAsync(endpoint);
        await Eventually.HoldsAsync(async () => (await SpreadAsync(setup, "c2", 30)).Tcp.ContainsKey(target), TimeSpan.FromSeconds(5), () => $"{target} never came back");

        // Deleted (detached): the same; attached again: it receives again.
        var host = int.Parse(target[1..], System.Globalization.CultureInfo.InvariantCulture);
        await cluster.DetachAsync(host, target);
        changed.Restart();
        lastHit = await LastHitAsync(setup, target, changed);
        Assert.True(lastHit < TimeSpan.FromSeconds(1), $"{target} still got new connections {lastHit} after deletion");
        await cluster.AttachAsync(host, target, "blue", createNamespace: false, labels: new Dictionary<string, string> { ["app"] = "echo" },
            ports: [new NamedPort { Name = "http", Protocol = Protocol.Tcp, Port = host == 3 ? 9090u : 8080u }]);
        await Eventually.HoldsAsync(async () => (await SpreadAsync(setup, "c3", 30)).Tcp.ContainsKey(target), TimeSpan.FromSeconds(5), () => $"{target} never came back after re-attach");
    }

    /// <summary>Connects until 60 connections in a row miss <paramref name="server"/>; returns when it was last reached.</summary>
    private static async Task<TimeSpan> LastHitAsync(Setup setup, string server, Stopwatch since)
    {
        var last = TimeSpan.Zero;
        var misses = 0;
        while (misses < 60 && since.Elapsed < TimeSpan.FromSeconds(10))
        {
            var (result, answer) = await PodSockets.TcpAsync(setup.Pod("c2"), setup.Ips["echo"], 80, Short);
            if (result == ProbeResult.Answered && answer.StartsWith(server + " ", StringComparison.Ordinal))
            {
                last = since.Elapsed;
                misses = 0;
            }
            else
            {
                misses++;
            }
        }
        return since.Elapsed >= TimeSpan.FromSeconds(10) ? since.Elapsed : last;
    }

    [Fact]
    public async Task SessionAffinity_KeepsEachClientOnOneEndpoint_UntilThatEndpointLeaves()
    {
        await using var setup = await StartAsync(SessionAffinity.ClientIp);
        var cluster = setup.Cluster;
        var chosen = new Dictionary<string, string>();
        for (var n = 1; n <= 3; n++)
        {
            var (tcp, _, _, failures) = await SpreadAsync(setup, $"c{n}", 40);
            Assert.Equal(0, failures);
            Assert.True(tcp.Count == 1, $"c{n} reached {string.Join(", ", tcp)}");
            chosen[$"c{n}"] = tcp.Keys.Single();
        }

        // The chosen endpoint leaves: the client is balanced again, then sticks to its new endpoint.
        var endpoint = await cluster.Client.Endpoints.GetAsync("default", chosen["c1"]);
        endpoint.Spec.Ready = false;
        await cluster.Client.Endpoints.UpdateAsync(endpoint);
        await Eventually.HoldsAsync(async () => !(await SpreadAsync(setup, "c1", 5)).Tcp.ContainsKey(chosen["c1"]), TimeSpan.FromSeconds(5), () => cluster.Ruleset(1));
        var (again, _, _, _) = await SpreadAsync(setup, "c1", 40);
        Assert.True(again.Count == 1 && !again.ContainsKey(chosen["c1"]), $"c1 reached {string.Join(", ", again)}");
    }

    /// <summary>
    /// Endpoints that leave while a node's agent is down: the restarted agent clears the UDP flows
    /// and client affinities that still lead there, as a running agent does when they leave; and
    /// a service deleted while it is down: its UDP flows stop reaching its former endpoints.
    /// </summary>
    [Fact]
    public async Task AgentRestart_ClearsFlowsAndAffinities_ToEndpointsThatLeftAndServicesDeletedWhileItWasDown()
    {
        await using var setup = await StartAsync(SessionAffinity.ClientIp);
        var cluster = setup.Cluster;
        using var flow = PodSockets.Create(setup.Pod("c1"), AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        var udpTarget = (await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow)).Answer.Split(' ')[0];
        var tcpTarget = Assert.Single((await SpreadAsync(setup, "c1", 10)).Tcp.Keys);
        var convergedBefore = cluster.LogLines(1, "read back and converged");

        cluster.KillAgent(1);
        foreach (var name in new[] { udpTarget, tcpTarget }.Distinct())
        {
            var endpoint = await cluster.Client.Endpoints.GetAsync("default", name);
            endpoint.Spec.Ready = false;
            await cluster.Client.Endpoints.UpdateAsync(endpoint);
        }
        // Still down: the old table and the flow's conntrack entry keep c1 where it was.
        Assert.Equal(udpTarget, (await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow)).Answer.Split(' ')[0]);
        cluster.StartAgent(1);
        await cluster.WaitForLogAsync(1, "read back and converged", convergedBefore + 1, TimeSpan.FromSeconds(30));

        var moved = await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow);
        Assert.Equal(ProbeResult.Answered, moved.Result);
        Assert.NotEqual(udpTarget, moved.Answer.Split(' ')[0]);
        var (tcp, _, _, failures) = await SpreadAsync(setup, "c1", 20);
        Assert.Equal(0, failures);
        Assert.True(tcp.Count == 1 && !tcp.ContainsKey(tcpTarget), $"c1 reached {string.Join(", ", tcp)}\n{cluster.Ruleset(1)}");

        // The service goes while the agent is down: only the flow's conntrack entry still leads to
        // its endpoint, and the restarted agent clears it (the table no longer has the VIP).
        cluster.KillAgent(1);
        await cluster.Client.Services.DeleteAsync("default", "echo");
        Assert.Equal(ProbeResult.Answered, (await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow)).Result);
        cluster.StartAgent(1);
        await cluster.WaitForLogAsync(1, "read back and converged", convergedBefore + 2, TimeSpan.FromSeconds(30));
        var gone = await PodSockets.UdpAsync(setup.Pod("c1"), setup.Ips["echo"], 53, Short, flow);
        Assert.True(gone.Result != ProbeResult.Answered, $"the deleted service's flow still reached {gone.Answer}");
    }

    [Fact]
    public async Task AgentRestart_With100Services_DropsNoConnection_AndChangesNothing()
    {
        // A restart within the node's lease: the tests' 5 s lease could run out while a loaded
        // machine starts the new agent, and the node's endpoints would then rightly change.
        await using var setup = await StartAsync(siloArgs: ["--ControlPlane:NodeLeaseDuration=00:00:30"]);
        var cluster = setup.Cluster;
        var vips = new List<string>();
        for (var i = 0; i < 100; i++)
        {
            var service = await cluster.Client.Services.CreateAsync(new Service
            {
                Metadata = new ObjectMeta { Name = $"svc{i}", Namespace = "default" },
                Spec = new ServiceSpec { Network = "blue", Selector = { ["app"] = "echo" }, Ports = { new ServicePort { Protocol = Protocol.Tcp, Port = 80, TargetPortName = "http" } } },
            });
            vips.Add(service.Status.ClusterIps[0]);
        }
        await Eventually.HoldsAsync(async () => (await PodSockets.TcpAsync(setup.Pod("c1"), vips[^1], 80, Short)).Result == ProbeResult.Answered,
            TimeSpan.FromSeconds(15), () => cluster.Ruleset(1));
        var convergedBefore = cluster.LogLines(1, "read back and converged");

        using var stop = new CancellationTokenSource();
        var traffic = Task.Run(async () =>
        {
            int ok = 0, failed = 0, i = 0;
            while (!stop.IsCancellationRequested)
            {
                var (result, _) = await PodSockets.TcpAsync(setup.Pod("c1"), vips[i++ % vips.Count], 80, TimeSpan.FromSeconds(2));
                if (result == ProbeResult.Answered) ok++; else failed++;
            }
            return (ok, failed);
        });
        await Task.Delay(300);
        cluster.KillAgent(1);
        cluster.StartAgent(1);
        await cluster.WaitForLogAsync(1, "read back and converged", convergedBefore + 1, TimeSpan.FromSeconds(30));
        await Task.Delay(500);
        stop.Cancel();
        var (succeeded, failedCount) = await traffic;
        Assert.Equal(0, failedCount);
        Assert.True(succeeded > 20, $"only {succeeded} connections during the restart");
        // The restarted agent found the kernel as it wanted it.
        Assert.Equal(1, cluster.LogLines(1, "read back and converged: 0 elements added, 0 removed"));
    }
}
