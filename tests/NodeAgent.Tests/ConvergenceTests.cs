using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using static ControlPlane.NodeAgent.Tests.PolicyTruthTableTests;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// Convergence you can wait for: WaitProgrammed returns only once every counted node's kernel
/// has a change, so probes made straight after it always agree with the policy; a stopped
/// agent's node is named until its lease expires, then waits go on without it.
/// </summary>
[Collection("policy")]
public sealed class ConvergenceTests(PolicyCluster bed)
{
    private static readonly TimeSpan Closed = TimeSpan.FromMilliseconds(300);

    /// <summary>
    /// 100 policy changes, each awaited with WaitProgrammed and probed at once. Round i isolates
    /// x/(a|b|c) (hosts 1, 2, 3 in turn) to ingress from y or from z, alternately, and probes it
    /// from y/… and z/… pods on another host: the allowed one must connect, the other must not.
    /// </summary>
    [Fact]
    public async Task Probes_right_after_WaitProgrammed_always_agree_with_the_policy()
    {
        await bed.ClearPoliciesAsync();
        var client = bed.Cluster.Client;
        var disagreements = new List<string>();
        var waits = new List<double>();
        NetworkPolicy? current = null;
        for (var round = 0; round < 100; round++)
        {
            var target = bed.Pod("x", PolicyCluster.Names[round % 3]);
            var allowedNs = round % 2 == 0 ? "y" : "z";
            var deniedNs = allowedNs == "y" ? "z" : "y";
            var policy = PolicyTruthTableTests.Policy("x", "flip", Select("pod", target.Name),
                ingress: [Rule([new NetworkPolicyPeer { NamespaceSelector = Select("ns", allowedNs) }])]);
            if (current is null)
            {
                current = await client.NetworkPolicies.CreateAsync(policy);
            }
            else
            {
                policy.Metadata.Etag = current.Metadata.Etag;
                current = await client.NetworkPolicies.UpdateAsync(policy);
            }
            var clock = Stopwatch.StartNew();
            WaitProgrammedResponse waited;
            try
            {
                waited = await client.WaitProgrammedAsync(new WaitProgrammedRequest
                {
                    Kind = Kind.NetworkPolicy, Namespace = "x", Name = "flip", Etag = current.Metadata.Etag, TimeoutSeconds = 30,
                });
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.DeadlineExceeded)
            {
                var status = await client.ConvergenceStatusAsync();
                throw new Xunit.Sdk.XunitException($"{e.Status.Detail}\n{status}\n" + string.Join("\n", Enumerable.Range(1, 3).Select(n => $"--- host-{n}:\n{bed.Cluster.Log(n)}")));
            }
            waits.Add(clock.Elapsed.TotalMilliseconds);
            Assert.Equal(3u, waited.Programmed.ReadyNodes);
            Assert.Equal(3u, waited.Programmed.ProgrammedNodes);
            Assert.Equal(current.Metadata.Etag, waited.Programmed.Etag);

            var other = PolicyCluster.Names.First(n => bed.Pod("y", n).Host != target.Host);
            var (allowed, denied) = (bed.Pod(allowedNs, other), bed.Pod(deniedNs, other));
            if (!await PolicyCluster.ProbeAsync(allowed.Netns, target.Ip, Protocol.Tcp, 80, TimeSpan.FromSeconds(2)))
                disagreements.Add($"round {round}: {allowed} → {target} refused, the policy allows it");
            if (await PolicyCluster.ProbeAsync(denied.Netns, target.Ip, Protocol.Tcp, 80, Closed))
                disagreements.Add($"round {round}: {denied} → {target} connected, the policy denies it");
        }
        waits.Sort();
        Console.WriteLine($"WaitProgrammed after a policy update: p50 {waits[49]:F0} ms, p99 {waits[98]:F0} ms, max {waits[^1]:F0} ms");
        Assert.Empty(disagreements);
    }

    /// <summary>
    /// Host 3's agent is stopped (SIGSTOP): a wait for a new change times out with
    /// DEADLINE_EXCEEDED naming host-3 (and that status is the server's, not the transport's).
    /// Once host-3's lease expires and the node is not ready, the same wait completes on the
    /// other two. When the agent goes on, the node catches up and counts again.
    /// </summary>
    [Fact]
    public async Task A_stopped_agent_is_named_until_its_node_is_not_ready()
    {
        await bed.ClearPoliciesAsync();
        var client = bed.Cluster.Client;
        var policy = await client.NetworkPolicies.CreateAsync(PolicyTruthTableTests.Policy("z", "stopped", Select("pod", "a"), types: ["Ingress"]));
        var first = await WaitAsync(client, policy, 30);
        Assert.Equal(3u, first.ReadyNodes);
        try
        {
            bed.Cluster.PauseAgent(3, stopped: true);
            policy.Spec.PolicyTypes.Add("Egress");
            policy = await client.NetworkPolicies.UpdateAsync(policy);

            var timedOut = await Assert.ThrowsAsync<RpcException>(() => WaitAsync(client, policy, 2));
            Assert.Equal(StatusCode.DeadlineExceeded, timedOut.StatusCode);
            Assert.True(Calls.IsClassified(timedOut), "the server's own DEADLINE_EXCEEDED");
            Assert.Contains("host-3", timedOut.Status.Detail);
            Assert.DoesNotContain("host-1", timedOut.Status.Detail);
            var status = (await client.NetworkPolicies.GetAsync("z", "stopped")).Status.Programmed;
            Assert.Equal(["host-3"], status.Missing);
            Assert.Equal((2u, 3u), (status.ProgrammedNodes, status.ReadyNodes));

            await NodeReadyAsync(client, "host-3", ready: false);
            var without = await WaitAsync(client, policy, 10);
            Assert.Equal((2u, 2u), (without.ProgrammedNodes, without.ReadyNodes));
        }
        finally
        {
            bed.Cluster.PauseAgent(3, stopped: false);
        }
        await NodeReadyAsync(client, "host-3", ready: true);
        // Back, and caught up: it counts again (the convergence status has no stream: poll it).
        var clock = Stopwatch.StartNew();
        while (!(await client.ConvergenceStatusAsync()).Nodes.Single(n => n.Name == "host-3").Counted)
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), "host-3 did not catch up within 30 s");
            await Task.Delay(100);
        }
        var again = await WaitAsync(client, policy, 30);
        Assert.Equal((3u, 3u), (again.ProgrammedNodes, again.ReadyNodes));
        await client.NetworkPolicies.DeleteAsync("z", "stopped");
    }

    private static async Task<ProgrammedStatus> WaitAsync(ControlPlaneClient client, NetworkPolicy policy, uint seconds) =>
        (await client.WaitProgrammedAsync(new WaitProgrammedRequest
        {
            Kind = Kind.NetworkPolicy, Namespace = policy.Metadata.Namespace, Name = policy.Metadata.Name, Etag = policy.Metadata.Etag, TimeoutSeconds = seconds,
        })).Programmed;

    /// <summary>Waits on a watch of nodes until <paramref name="node"/> has the readiness asked for.</summary>
    private static async Task NodeReadyAsync(ControlPlaneClient client, string node, bool ready)
    {
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in client.WatchAsync(new WatchRequest { Kinds = { Kind.Node } }, Calls.Until(deadline.Token), deadline.Token))
        {
            if (e.Node?.Metadata.Name == node && e.Node.Status.Ready == ready) return;
        }
    }
}
