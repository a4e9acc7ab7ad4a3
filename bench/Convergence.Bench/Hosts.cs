using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.NodeAgent.Tests;
using Grpc.Core;
using static ControlPlane.NodeAgent.Tests.PolicyTruthTableTests;

namespace ControlPlane.Convergence.Bench;

/// <summary>
/// Part 1: three real hosts. Namespaces x and y with one pod per host each (x pods serve TCP 80);
/// each x pod has a policy that admits ingress from namespace y. Each change isolates one x pod
/// from everything, or opens it to y again (closing and opening alternate, the pod rotates over
/// the hosts). Per change, from the Update's return: until WaitProgrammed returns, and until a
/// y pod on another host first observes the new behaviour (the reference); right after
/// WaitProgrammed, every y pod probes the pod once more and must agree with the policy.
/// </summary>
internal static class Hosts
{
    private static readonly string[] Names = ["a", "b", "c"];

    /// <summary>A new observation probe this often (the resolution of the observed latency).</summary>
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromMilliseconds(Env("PROBE_INTERVAL_MS", 5));

    /// <summary>Connect timeout of an observation probe: a closed pod drops the SYN, so the probe times out.</summary>
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromMilliseconds(Env("PROBE_TIMEOUT_MS", 100));

    /// <summary>A change counts as observed once this many probes in a row (by start) show it.</summary>
    private const int Confirmations = 5;

    /// <summary>The check after WaitProgrammed: long enough for an open pod to answer on a busy machine.</summary>
    private static readonly TimeSpan CheckTimeout = TimeSpan.FromMilliseconds(500);

    private static int Env(string name, int fallback) => int.TryParse(Environment.GetEnvironmentVariable(name), out var v) ? v : fallback;

    public static async Task RunAsync(int changes, CancellationToken stop)
    {
        var setup = Stopwatch.StartNew();
        await using var cluster = await Cluster.StartAsync(3);
        using var servers = new PodSockets();
        var probers = new List<Prober>();
        try
        {
            var client = cluster.Client;
            foreach (var ns in (string[])["x", "y"])
            {
                await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = ns, Labels = { ["ns"] = ns } } });
            }
            await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "net" }, Spec = new NetworkSpec { Vni = 61, Ipv4Cidr = "10.61.0.0/16" } });
            var targets = new Dictionary<string, IPEndPoint>();
            foreach (var ns in (string[])["x", "y"])
            {
                for (var h = 1; h <= 3; h++)
                {
                    var name = Names[h - 1];
                    var attached = await cluster.AttachAsync(h, name, "net", labels: new Dictionary<string, string> { ["pod"] = name }, ns: ns);
                    var netns = "/var/run/netns/" + cluster.Pod(ns + name);
                    if (ns == "x")
                    {
                        servers.Serve(netns, $"x/{name}", 80);
                        targets[name] = new IPEndPoint(IPAddress.Parse(attached.Ips[0]), 80);
                    }
                    else
                    {
                        probers.Add(new Prober(netns, $"y/{name}"));
                    }
                }
            }
            // Every x pod admits ingress from namespace y only.
            var policies = new Dictionary<string, NetworkPolicy>();
            foreach (var name in Names)
            {
                policies[name] = await client.NetworkPolicies.CreateAsync(Policy("x", "iso-" + name, Select("pod", name), types: ["Ingress"], ingress: [FromY()]));
            }
            await Stats.WaitCountedAsync(client, 3, TimeSpan.FromSeconds(60), stop);
            foreach (var name in Names)
            {
                var p = policies[name];
                await client.WaitProgrammedAsync(new WaitProgrammedRequest { Kind = Kind.NetworkPolicy, Namespace = "x", Name = p.Metadata.Name, Etag = p.Metadata.Etag, TimeoutSeconds = 60 });
            }
            foreach (var name in Names)
            {
                foreach (var prober in probers)
                {
                    if (!await prober.UntilAsync(targets[name], open: true, TimeSpan.FromSeconds(20)))
                        throw new InvalidOperationException($"{prober} cannot reach x/{name} at the start");
                }
            }
            Console.Error.WriteLine($"hosts: set up in {setup.Elapsed.TotalSeconds:F0} s; {changes} changes");
            var before = await client.ConvergenceStatusAsync();

            var updates = new List<double>();
            var waits = new List<double>();
            var observed = new List<(bool Open, double Ms)>();
            var lead = new List<double>();
            var failures = new List<string>();
            var checks = 0;
            var disagreements = new List<string>();
            for (var i = 0; i < changes; i++)
            {
                stop.ThrowIfCancellationRequested();
                var k = i / 2;
                var name = Names[k % 3];
                var open = i % 2 == 1;
                // Probed from the y pod on the next host (hosts are numbered 1..3, pod k%3 is on host k%3+1).
                var from = probers[(k + 1) % 3];
                var target = targets[name];
                var policy = policies[name].Clone();
                policy.Spec.Ingress.Clear();
                if (open) policy.Spec.Ingress.Add(FromY());

                var sent = Stopwatch.GetTimestamp();
                var updated = await client.NetworkPolicies.UpdateAsync(policy, Calls.Within(TimeSpan.FromSeconds(10), stop));
                var t0 = Stopwatch.GetTimestamp();
                updates.Add(Stats.Between(sent, t0));
                policies[name] = updated;
                var observing = Observe(from, target, open, t0, stop);
                double waited;
                try
                {
                    await client.WaitProgrammedAsync(new WaitProgrammedRequest
                    {
                        Kind = Kind.NetworkPolicy, Namespace = "x", Name = updated.Metadata.Name, Etag = updated.Metadata.Etag, TimeoutSeconds = 30,
                    }, Calls.Within(TimeSpan.FromSeconds(35), stop));
                    waited = Stats.Since(t0);
                    waits.Add(waited);
                }
                catch (RpcException e) when (!stop.IsCancellationRequested)
                {
                    waited = double.NaN;
                    failures.Add($"change {i}: {e.StatusCode} {e.Status.Detail}");
                }
                // Right after WaitProgrammed: every y pod (this host's and the others') must see the policy.
                var seen = await Task.WhenAll(probers.Select(p => p.ConnectsAsync(target, CheckTimeout)));
                checks += seen.Length;
                for (var p = 0; p < seen.Length; p++)
                {
                    if (seen[p] != open) disagreements.Add($"change {i}: {probers[p]} -> x/{name} {(seen[p] ? "open" : "closed")}, policy says {(open ? "open" : "closed")}");
                }
                var ms = await observing;
                observed.Add((open, ms));
                if (!double.IsNaN(ms) && !double.IsNaN(waited)) lead.Add(waited - ms);
                if (double.IsNaN(ms)) failures.Add($"change {i}: x/{name} never observed {(open ? "open" : "closed")} from {from}");
            }

            var status = await client.ConvergenceStatusAsync();
            Console.WriteLine($"### Three hosts: {changes} policy changes (real agents, in-process silo, NodeLeaseDuration 5 s)");
            Console.WriteLine();
            Console.WriteLine($"From the Update's return, in ms. Observed: the start of the first probe of the final run of probes (TCP connect from a y pod on another host, " +
                $"a new probe every {ProbeInterval.TotalMilliseconds:0} ms, {ProbeTimeout.TotalMilliseconds:0} ms connect timeout, {Confirmations} in a row) that shows the new behaviour.");
            Console.WriteLine();
            Console.WriteLine("| measure | p50 | p90 | p99 | max | n |");
            Console.WriteLine("|---|---|---|---|---|---|");
            Console.WriteLine($"| (the Update call itself, sent → returned) | {Stats.Cells(updates)} |");
            Console.WriteLine($"| WaitProgrammed returned | {Stats.Cells(waits)} |");
            Console.WriteLine($"| observed by probes, all changes | {Stats.Cells([.. observed.Select(o => o.Ms)])} |");
            Console.WriteLine($"| observed, closing (first dropped probe) | {Stats.Cells([.. observed.Where(o => !o.Open).Select(o => o.Ms)])} |");
            Console.WriteLine($"| observed, opening (first answered probe) | {Stats.Cells([.. observed.Where(o => o.Open).Select(o => o.Ms)])} |");
            Console.WriteLine($"| WaitProgrammed minus observed, per change | {Stats.Cells(lead)} |");
            Console.WriteLine();
            Console.WriteLine($"Already in force when the Update returned (the first probe, started then, showed it): {observed.Count(o => o.Ms < ProbeInterval.TotalMilliseconds):N0} of {observed.Count} changes " +
                "(observed < one probe interval); the watch event can reach the agents before the Update's response reaches the caller.");
            Console.WriteLine();
            Console.WriteLine($"Probes right after WaitProgrammed returned that disagreed with the policy: **{disagreements.Count} of {checks}** (every y pod, {CheckTimeout.TotalMilliseconds:0} ms timeout). " +
                $"Failed waits or unobserved changes: {failures.Count}.");
            foreach (var line in disagreements.Concat(failures).Take(20)) Console.WriteLine($"- {line}");
            Console.WriteLine();
            Console.WriteLine("Convergence/Status, commit → programmed per node in ms (the node's last 1,024 samples: the setup's changes are in both rows, " +
                "so the setup row shows how much of the end row they make):");
            Console.WriteLine();
            Console.WriteLine("| node | when | ready | counted | samples | p50 | p99 | max |");
            Console.WriteLine("|---|---|---|---|---|---|---|---|");
            foreach (var node in status.Nodes)
            {
                var early = before.Nodes.Single(n => n.Name == node.Name);
                Console.WriteLine($"| {node.Name} | after the setup | {early.Ready} | {early.Counted} | {early.LatencySamples} | {Stats.Ms(early.LatencyP50Ms)} | {Stats.Ms(early.LatencyP99Ms)} | {Stats.Ms(early.LatencyMaxMs)} |");
                Console.WriteLine($"| {node.Name} | at the end | {node.Ready} | {node.Counted} | {node.LatencySamples} | {Stats.Ms(node.LatencyP50Ms)} | {Stats.Ms(node.LatencyP99Ms)} | {Stats.Ms(node.LatencyMaxMs)} |");
            }
            Console.WriteLine();
            Console.WriteLine($"changes_waiting: {status.ChangesWaiting}");
            var errors = Enumerable.Range(1, 3).Sum(n => cluster.LogLines(n, "warn:") + cluster.LogLines(n, "fail:") + cluster.LogLines(n, "crit:"));
            Console.WriteLine($"Agent log lines at warn/fail/crit: {errors}");
            for (var n = 1; n <= 3; n++)
            {
                foreach (var line in cluster.Log(n).Split('\n').Where(l => l.StartsWith("warn:", StringComparison.Ordinal) || l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal)).Distinct().Take(5))
                {
                    Console.WriteLine($"- host-{n}: {line}");
                }
            }
        }
        finally
        {
            foreach (var prober in probers) prober.Dispose();
        }
    }

    private static NetworkPolicyRule FromY() => Rule([new NetworkPolicyPeer { NamespaceSelector = Select("ns", "y") }]);

    /// <summary>
    /// Milliseconds from <paramref name="t0"/> to the start of the first probe of the run that
    /// shows <paramref name="open"/> (<see cref="Confirmations"/> probes in a row, in start order); NaN after 10 s.
    /// </summary>
    private static async Task<double> Observe(Prober from, IPEndPoint target, bool open, long t0, CancellationToken stop)
    {
        var probes = new List<(long Start, Task<bool> Result)>();
        try
        {
            while (true)
            {
                probes.Add((Stopwatch.GetTimestamp(), from.ConnectsAsync(target, ProbeTimeout)));
                var first = -1;
                var run = 0;
                for (var j = 0; j < probes.Count && probes[j].Result.IsCompleted; j++)
                {
                    if (probes[j].Result.Result == open)
                    {
                        if (first < 0) first = j;
                        run++;
                    }
                    else
                    {
                        (first, run) = (-1, 0);
                    }
                }
                if (run >= Confirmations) return Stats.Between(t0, probes[first].Start);
                if (Stats.Since(t0) > 10_000) return double.NaN;
                await Task.Delay(ProbeInterval, stop);
            }
        }
        finally
        {
            // No socket outlives the change (each ends by its timeout).
            await Task.WhenAll(probes.Select(p => p.Result));
        }
    }

    /// <summary>TCP connections from inside one pod's namespace (a thread there creates the sockets).</summary>
    private sealed class Prober(string netns, string name) : IDisposable
    {
        private readonly NetworkNamespace _namespace = NetworkNamespace.Enter(netns);

        /// <summary>Whether a new connection is accepted within <paramref name="timeout"/> (dropped or refused: false).</summary>
        public async Task<bool> ConnectsAsync(IPEndPoint target, TimeSpan timeout)
        {
            using var socket = _namespace.Invoke(() => new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp));
            using var deadline = new CancellationTokenSource(timeout);
            try
            {
                await socket.ConnectAsync(target, deadline.Token);
                return true;
            }
            catch (OperationCanceledException)
            {
                return false;
            }
            catch (SocketException)
            {
                return false;
            }
        }

        /// <summary>Probes until the target is <paramref name="open"/> (or not) or <paramref name="within"/> passes.</summary>
        public async Task<bool> UntilAsync(IPEndPoint target, bool open, TimeSpan within)
        {
            var clock = Stopwatch.StartNew();
            while (clock.Elapsed < within)
            {
                if (await ConnectsAsync(target, TimeSpan.FromMilliseconds(500)) == open) return true;
            }
            return false;
        }

        public override string ToString() => name;

        public void Dispose() => _namespace.Dispose();
    }
}
