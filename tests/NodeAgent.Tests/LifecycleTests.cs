using System.Diagnostics;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>Deletion, agent crashes and control-plane outages, against live traffic.</summary>
public sealed class LifecycleTests
{
    private static async Task<(Cluster Cluster, Dictionary<string, string> Ips)> TwoHostsAsync()
    {
        var cluster = await Cluster.StartAsync(hosts: 2);
        try
        {
            await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
            await cluster.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });
            var ips = new Dictionary<string, string>
            {
                ["a"] = (await cluster.AttachAsync(1, "a", "blue")).Ips[0],
                ["b"] = (await cluster.AttachAsync(2, "b", "blue")).Ips[0],
            };
            Assert.True(cluster.Ping("a", ips["b"], TimeSpan.FromSeconds(10)), cluster.Diagnostics("a"));
            return (cluster, ips);
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
    }

    /// <summary>
    /// A node the control plane refuses to register (here its underlay address is a multicast
    /// one) is a refusal with its reason in the log, not "unreachable". (A node name that is no
    /// DNS subdomain never gets this far: the agent refuses it at start.)
    /// </summary>
    /// <summary>
    /// An attach without a container id, of an endpoint whose workload still has its interface in
    /// another namespace, is refused and moves nothing: the workload keeps its network. Once that
    /// namespace is gone (its interface with it) the same attach wires the new one.
    /// </summary>
    [Fact]
    public async Task An_attach_without_container_does_not_take_a_live_workloads_interface()
    {
        var (cluster, ips) = await TwoHostsAsync();
        await using var _ = cluster;
        var elsewhere = cluster.Pod("a2");
        cluster.AddNamespace(elsewhere);
        using var channel = ControlPlane.Contracts.Client.ControlPlaneChannel.ForUnixSocket(cluster.AgentSocket(1));
        var agent = new Agent.AgentClient(channel);
        var request = new AttachRequest { Namespace = "default", Name = "a", Network = "blue", NetnsPath = $"/var/run/netns/{elsewhere}", InterfaceName = "eth0" };

        var refused = await Assert.ThrowsAsync<RpcException>(async () => await agent.AttachAsync(request, ControlPlane.Contracts.Client.Calls.Within(TimeSpan.FromSeconds(20))));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("is attached in another network namespace", refused.Status.Detail);
        // The agent's own refusals carry the trailer the silo's do: the agent answered, no connection failed.
        Assert.True(ControlPlane.Contracts.Client.Calls.IsClassified(refused), refused.ToString());
        var badName = await Assert.ThrowsAsync<RpcException>(async () => await agent.AttachAsync(new AttachRequest(request) { InterfaceName = "not an interface" }));
        Assert.Equal((StatusCode.InvalidArgument, "InvalidArgument"), (badName.StatusCode, badName.Trailers.GetValue(ControlPlane.Contracts.Client.Calls.ClassifiedTrailer)));
        Assert.True(cluster.Ping("a", ips["b"], TimeSpan.FromSeconds(5)), "a lost its network: " + cluster.Diagnostics("a"));

        cluster.RemovePod(cluster.Pod("a"));
        var moved = await agent.AttachAsync(request, ControlPlane.Contracts.Client.Calls.Within(TimeSpan.FromSeconds(20)));
        Assert.Equal(ips["a"], moved.Ips[0]);
    }

    [Fact]
    public async Task An_agent_whose_node_is_refused_logs_the_reason()
    {
        await using var cluster = await Cluster.StartAsync(1, "--Agent:UnderlayIp=224.0.0.7");

        await cluster.WaitForLogAsync(1, "refused node host-1: InvalidArgument", count: 1, TimeSpan.FromSeconds(20));
        Assert.Contains("spec.underlay_ip", cluster.Log(1));
        Assert.Equal(0, cluster.LogLines(1, "unreachable"));
    }

    /// <summary>
    /// Two agents claim one underlay address: the one whose node registers first programs its
    /// host. The other's node exists with another underlay address and holds a block of a
    /// network, but its agent cannot move the node to the taken address, so it programs nothing
    /// (no overlay device, no table): it must not program the host as a node it does not match.
    /// </summary>
    [Fact]
    public async Task An_agent_whose_node_cannot_register_programs_nothing()
    {
        await using var cluster = await Cluster.StartAsync(2, "--Agent:UnderlayIp=10.99.0.1", "--Agent:MaxBackoff=00:00:01");
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        int refused;
        while ((refused = cluster.LogLines(1, "cannot register") > 0 ? 1 : cluster.LogLines(2, "cannot register") > 0 ? 2 : 0) == 0)
        {
            await Task.Delay(100, deadline.Token);
        }
        var registered = 3 - refused;
        await cluster.Client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = $"host-{refused}" }, Spec = new NodeSpec { UnderlayIp = "10.99.0.9" } });
        await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "default" } });
        await cluster.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });
        foreach (var n in new[] { registered, refused })
        {
            await cluster.Client.Endpoints.CreateAsync(new Endpoint { Metadata = new ObjectMeta { Namespace = "default", Name = $"w{n}" }, Spec = new EndpointSpec { Network = "blue", Node = $"host-{n}" } });
        }

        while (Shell.Run("ip", "-n", cluster.Host(registered), "link", "show", "cpvx100").Code != 0)
        {
            await Task.Delay(100, deadline.Token);
        }
        // Both agents follow the same stream: two refusals later, the refused one has had every chance to program.
        var seen = cluster.LogLines(refused, "cannot register");
        await cluster.WaitForLogAsync(refused, "cannot register", seen + 2, TimeSpan.FromSeconds(20));

        Assert.NotEqual(0, Shell.Run("ip", "-n", cluster.Host(refused), "link", "show", "cpvx100").Code);
        Assert.NotEqual(0, Shell.Run("ip", "netns", "exec", cluster.Host(refused), "nft", "list", "table", "inet", "controlplane").Code);
        Assert.Contains("table inet controlplane", cluster.Ruleset(registered));
        // The agent whose namespace does not have the address says so once, at start; the other does not.
        var without = cluster.HostAddress(1) == "10.99.0.1" ? 2 : 1;
        Assert.Equal(1, cluster.LogLines(without, "Agent:UnderlayIp 10.99.0.1 is on no interface of this host"));
        Assert.Equal(0, cluster.LogLines(3 - without, "is on no interface"));
    }

    [Fact]
    public async Task DeletedEndpoint_IsUnreachableAndItsInterfaceGoneWithinOneSecond()
    {
        var (cluster, ips) = await TwoHostsAsync();
        await using var _ = cluster;

        // Watch host 2's kernel for the removal of b's interface (its routes go with it, unannounced).
        using var monitor = Process.Start(new ProcessStartInfo("ip", ["-n", cluster.Host(2), "monitor", "link"]) { RedirectStandardOutput = true })!;
        var removed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var listening = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        monitor.OutputDataReceived += (_, e) =>
        {
            if (e.Data is not { } line) return;
            if (line.Contains(": lo:", StringComparison.Ordinal)) listening.TrySetResult();
            if (line.StartsWith("Deleted", StringComparison.Ordinal) && line.Contains(": cpe", StringComparison.Ordinal)) removed.TrySetResult();
        };
        monitor.BeginOutputReadLine();
        // The monitor is subscribed once it reports a harmless change of ours.
        for (var mtu = 65535; !listening.Task.IsCompleted && mtu > 65500; mtu--)
        {
            Shell.Must("ip", "-n", cluster.Host(2), "link", "set", "lo", "mtu", mtu.ToString(System.Globalization.CultureInfo.InvariantCulture));
            await Task.WhenAny(listening.Task, Task.Delay(50));
        }
        await listening.Task.WaitAsync(TimeSpan.FromSeconds(5));

        var clock = Stopwatch.StartNew();
        await cluster.Client.Endpoints.DeleteAsync("default", "b");
        await removed.Task.WaitAsync(TimeSpan.FromSeconds(5));
        clock.Stop();
        monitor.Kill();

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(1), $"took {clock.Elapsed.TotalMilliseconds:F0} ms");
        Assert.DoesNotContain(Shell.Must("ip", "-n", cluster.Host(2), "-br", "link").Split('\n'), l => l.StartsWith("cpe", StringComparison.Ordinal));
        Assert.Equal("", Shell.Must("ip", "-n", cluster.Host(2), "route", "show", "table", "100100", ips["b"]).Trim());
        Assert.DoesNotContain("iif cpe", Shell.Must("ip", "-n", cluster.Host(2), "rule", "show"));
        Assert.False(cluster.Ping("a", ips["b"], TimeSpan.Zero));
    }

    [Fact]
    public async Task AttachAndDetach_AreIdempotent()
    {
        var (cluster, ips) = await TwoHostsAsync();
        await using var _ = cluster;

        var again = await cluster.AttachAsync(2, "b", "blue", createNamespace: false);
        Assert.Equal(ips["b"], again.Ips[0]);
        Assert.Single(Shell.Must("ip", "-n", cluster.Host(2), "-br", "link").Split('\n'), l => l.StartsWith("cpe", StringComparison.Ordinal));
        Assert.True(cluster.Ping("a", ips["b"], TimeSpan.FromSeconds(5)));

        await cluster.DetachAsync(2, "b");
        await cluster.DetachAsync(2, "b");
        Assert.DoesNotContain(Shell.Must("ip", "-n", cluster.Host(2), "-br", "link").Split('\n'), l => l.StartsWith("cpe", StringComparison.Ordinal));
        await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => cluster.Client.Endpoints.GetAsync("default", "b"));
    }

    [Fact]
    public async Task KilledAgent_LeavesTrafficFlowing_AndItsRestartChangesNothingLive()
    {
        var (cluster, ips) = await TwoHostsAsync();
        await using var _ = cluster;
        var before = Shell.Must("ip", "-n", cluster.Host(1), "route", "show", "table", "100100", "proto", "252");
        Assert.Contains("nhid", before);

        // Continuous pings across the kill and the restart.
        var pinger = Process.Start(new ProcessStartInfo("ip", ["netns", "exec", cluster.Pod("a"), "ping", "-i", "0.1", "-c", "60", "-W", "1", ips["b"]]) { RedirectStandardOutput = true })!;
        using var monitor = Process.Start(new ProcessStartInfo("ip", ["-n", cluster.Host(1), "monitor", "route", "neigh"]) { RedirectStandardOutput = true })!;
        var changes = new List<string>();
        monitor.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (changes) changes.Add(e.Data); };
        monitor.BeginOutputReadLine();

        cluster.KillAgent(1);
        await Task.Delay(1000); // the data path alone carries the traffic for a while
        cluster.StartAgent(1);
        await cluster.WaitForLogAsync(1, "In sync", count: 2, TimeSpan.FromSeconds(20));
        var output = await pinger.StandardOutput.ReadToEndAsync();
        await pinger.WaitForExitAsync();
        monitor.Kill();

        Assert.Contains("60 packets transmitted, 60 received, 0% packet loss", output);
        Assert.Equal(before, Shell.Must("ip", "-n", cluster.Host(1), "route", "show", "table", "100100", "proto", "252"));
        lock (changes) Assert.DoesNotContain(changes, c => c.StartsWith("Deleted", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StoppedSilo_LeavesTheDataPathWorking_AndAgentsResumeWithoutRelisting()
    {
        var (cluster, ips) = await TwoHostsAsync();
        await using var _ = cluster;
        var lists = cluster.LogLines(1, "In sync");

        await cluster.StopSiloAsync();
        Assert.True(cluster.Ping("a", ips["b"], TimeSpan.FromSeconds(2)));
        // A detach the agent cannot pass on says that the control plane is what is unreachable
        // (the agent itself answered), and changes nothing.
        var refused = await Assert.ThrowsAsync<RpcException>(() => cluster.DetachAsync(2, "b"));
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        Assert.StartsWith("the control plane (unix:", refused.Status.Detail, StringComparison.Ordinal);
        Assert.EndsWith(") is unreachable (Unavailable)", refused.Status.Detail, StringComparison.Ordinal);
        Assert.True(ControlPlane.Contracts.Client.Calls.IsClassified(refused), refused.ToString());
        Assert.True(cluster.Ping("a", ips["b"], TimeSpan.FromSeconds(2)));

        await cluster.StartSiloAsync();
        var c = (await cluster.AttachAsync(2, "c", "blue")).Ips[0];
        Assert.True(cluster.Ping("a", c, TimeSpan.FromSeconds(10)), cluster.Diagnostics("a"));
        Assert.Equal(lists, cluster.LogLines(1, "In sync"));
    }

    [Fact]
    public async Task Sigterm_StopsTheAgent_WithoutFailOrCritLines_AndLeavesTheDataPath()
    {
        var (cluster, ips) = await TwoHostsAsync();
        await using var _ = cluster;

        var (code, output) = await cluster.TerminateAgentAsync(1);

        Assert.Equal(0, code);
        Assert.DoesNotContain(output, line => line.Contains("fail:", StringComparison.Ordinal) || line.Contains("crit:", StringComparison.Ordinal));
        Assert.True(cluster.Ping("a", ips["b"], TimeSpan.FromSeconds(2)), cluster.Diagnostics("a"));
    }
}
