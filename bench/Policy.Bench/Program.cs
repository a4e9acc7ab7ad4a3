using System.Diagnostics;
using System.Net;
using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Policy;
using ControlPlane.NodeAgent.Table;
using ControlPlane.NodeAgent.Tests;

// Network policy benchmarks.
//   load    [endpoints] [rules]: the agent's policy compilation and table programming in a private
//           namespace (calculation + netlink + commit), for the allow-lists of nft-rate.sh policy.
//   latency [changes]: three hosts with agents; policy and label changes through the API, timed
//           until every node's kernel holds the result (commit notifications, then a read-back).
var mode = args.Length > 0 ? args[0] : "load";
if (mode == "load")
{
    var endpoints = args.Length > 1 ? int.Parse(args[1]) : 1000;
    var rules = args.Length > 2 ? int.Parse(args[2]) : 20;
    Console.WriteLine($"{endpoints} local endpoints x {rules} ingress rules (10 peer addresses per rule, TCP port 1000+rule), one policy per endpoint.");
    Console.WriteLine("Times in ms, each the calculation plus netlink plus the kernel's commit; changes: median / p99 of 20.");
    Console.WriteLine("| peers | entries (exact + ranges) | full load: first in the process / again | restart (read back, no change) | 1 address added to 1 rule | new endpoint + policy | endpoint + policy deleted |");
    Console.WriteLine("|---|---|---|---|---|---|---|");
    foreach (var selectors in (bool[])[false, true])
    {
        var name = "cppb" + Guid.NewGuid().ToString("N")[..8];
        Shell.Must("ip", "netns", "add", name);
        try
        {
            using var ns = NetworkNamespace.Enter("/var/run/netns/" + name);
            Console.WriteLine(ns.Invoke(() => Load.Measure(endpoints, rules, selectors)));
        }
        finally
        {
            Shell.Run("ip", "netns", "del", name);
        }
    }
    return 0;
}
if (mode == "latency")
{
    var changes = args.Length > 1 ? int.Parse(args[1]) : 100;
    await Latency.MeasureAsync(changes);
    return 0;
}
Console.Error.WriteLine("usage: load [endpoints] [rules] | latency [changes]");
return 2;

/// <summary>The load benchmark: the same allow-lists as nft-rate.sh policy, compiled by the agent's code.</summary>
internal static class Load
{
    private const int Reps = 20, Groups = 222, PerGroup = 9;

    public static string Measure(int count, int rules, bool selectors)
    {
        var (endpoints, policies) = World(count, rules, selectors);
        using var nft = NftSocket.Open(AgentTable.Name);
        // Cold: the first load in this process, as an agent's start (compilation of the code included).
        var clock = Stopwatch.StartNew();
        var groups = FullLoad(nft, endpoints, policies);
        var cold = clock.Elapsed.TotalMilliseconds;
        // Warm: the table deleted and loaded again by the same process.
        nft.Commit(nft.Begin().DeleteTable());
        clock.Restart();
        groups = FullLoad(nft, endpoints, policies);
        var full = clock.Elapsed.TotalMilliseconds;
        var exact = groups.Sum(g => g.Group.Elements.Count(e => e.Set == PolicyRuleset.Exact(FamilyLayout.V4, PolicyDirection.Ingress)));
        var ranges = groups.Sum(g => g.Group.Elements.Count(e => e.Set.StartsWith("ing_range4_", StringComparison.Ordinal)));

        clock.Restart();
        var restartedIndex = new PolicyIndex("n1", 1 << 20);
        restartedIndex.Reset(endpoints, policies, []);
        var programmer = new TableProgrammer(nft);
        var outcome = programmer.Apply(restartedIndex.TakeChanges(), complete: true);
        var restart = clock.Elapsed.TotalMilliseconds;
        if (outcome.ElementsAdded + outcome.ElementsRemoved != 0) throw new InvalidOperationException("restart changed elements: " + outcome);

        var changes = new List<double>();
        var middle = policies[count / 2];
        for (var r = 0; r < Reps; r++)
        {
            var changed = middle.Clone();
            if (r % 2 == 0) changed.Spec.Ingress[rules / 2].Peers.Add(new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = "10.250.0.1/32" } });
            clock.Restart();
            restartedIndex.UpdatePolicy(PolicyKey(middle), changed);
            var o = programmer.Apply(restartedIndex.TakeChanges(), complete: false);
            changes.Add(clock.Elapsed.TotalMilliseconds);
            if (o.ElementsAdded + o.ElementsRemoved == 0) throw new InvalidOperationException("no change");
        }
        changes.Sort();

        var extra = Endpoint(count + 1, "n1", $"ep-{count + 1}");
        var extraPolicy = Policy(count + 1, rules, selectors);
        clock.Restart();
        restartedIndex.UpdateEndpoint("bench/" + extra.Metadata.Name, extra);
        restartedIndex.UpdatePolicy(PolicyKey(extraPolicy), extraPolicy);
        programmer.Apply(restartedIndex.TakeChanges(), complete: false);
        var added = clock.Elapsed.TotalMilliseconds;
        clock.Restart();
        restartedIndex.UpdatePolicy(PolicyKey(extraPolicy), null);
        restartedIndex.UpdateEndpoint("bench/" + extra.Metadata.Name, null);
        programmer.Apply(restartedIndex.TakeChanges(), complete: false);
        var deleted = clock.Elapsed.TotalMilliseconds;

        var peers = selectors ? "9 pods by label + one /24 ip block" : "ip blocks: one /24 + 9 addresses (nft-rate.sh's)";
        return $"| {peers} | {exact + ranges} ({exact} + {ranges}) | {cold:F0} / {full:F0} | {restart:F0} | {changes[Reps / 2]:F2} / {changes[^1]:F2} | {added:F2} | {deleted:F2} |";
    }

    private static List<(string Key, ElementGroup Group)> FullLoad(NftSocket nft, List<Endpoint> endpoints, List<NetworkPolicy> policies)
    {
        var index = new PolicyIndex("n1", 1 << 20);
        index.Reset(endpoints, policies, []);
        var groups = index.TakeChanges();
        new TableProgrammer(nft).Apply(groups, complete: true);
        return groups;
    }

    private static string PolicyKey(NetworkPolicy p) => $"{p.Metadata.Namespace}/{p.Metadata.Name}";

    private static (List<Endpoint>, List<NetworkPolicy>) World(int count, int rules, bool selectors)
    {
        var endpoints = Enumerable.Range(0, count).Select(p => Endpoint(p, "n1", $"ep-{p}")).ToList();
        if (selectors)
        {
            // Remote endpoints in groups of 9, at every other address (so none are neighbours).
            for (var i = 0; i < Groups * PerGroup; i++)
            {
                var k = 2 * i + 1;
                var remote = new Endpoint
                {
                    Metadata = new ObjectMeta { Namespace = "bench", Name = $"peer-{i}", Labels = { ["group"] = $"g{i / PerGroup}" } },
                    Spec = new EndpointSpec { Node = "n2" },
                    Status = new EndpointStatus { Ips = { $"10.{100 + k / 65536}.{k / 256 % 256}.{k % 256}" } },
                };
                endpoints.Add(remote);
            }
        }
        return (endpoints, Enumerable.Range(0, count).Select(p => Policy(p, rules, selectors)).ToList());
    }

    private static Endpoint Endpoint(int p, string node, string name) => new()
    {
        Metadata = new ObjectMeta { Namespace = "bench", Name = name, Labels = { ["pod"] = name } },
        Spec = new EndpointSpec { Node = node },
        Status = new EndpointStatus { Ips = { $"10.244.{1 + p / 250}.{2 + p % 250}" } },
    };

    /// <summary>Policy p selects endpoint p; rule r allows TCP 1000+r from nft-rate.sh's addresses (or from a group of pods and the /24).</summary>
    private static NetworkPolicy Policy(int p, int rules, bool selectors)
    {
        var spec = new NetworkPolicySpec { PodSelector = new LabelSelector { MatchLabels = { ["pod"] = $"ep-{p}" } } };
        for (var r = 0; r < rules; r++)
        {
            var g = (p * rules + r) % 60000;
            var rule = new NetworkPolicyRule { Ports = { new NetworkPolicyPort { Protocol = Protocol.Tcp, Number = (uint)(1000 + r) } } };
            rule.Peers.Add(new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = $"10.200.{g % 256}.0/24" } });
            if (selectors)
            {
                rule.Peers.Add(new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchLabels = { ["group"] = $"g{(p * rules + r) % Groups}" } } });
            }
            else
            {
                for (var z = 1; z < 10; z++) rule.Peers.Add(new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = $"10.{100 + g / 256 % 100}.{g % 256}.{z}/32" } });
            }
            spec.Ingress.Add(rule);
        }
        return new NetworkPolicy { Metadata = new ObjectMeta { Namespace = "bench", Name = $"np-{p}" }, Spec = spec };
    }
}

/// <summary>The latency benchmark: changes through the API until every node's kernel holds them.</summary>
internal static class Latency
{
    public static async Task MeasureAsync(int changes)
    {
        await using var cluster = await Cluster.StartAsync(3);
        var client = cluster.Client;
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "bench" } });
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "net" }, Spec = new NetworkSpec { Vni = 70, Ipv4Cidr = "10.70.0.0/16" } });
        // Two pods per host: p<n>a is a client (a peer of the policy), p<n>b is not.
        var pods = new Dictionary<string, (int Host, string Ip)>();
        for (var n = 1; n <= 3; n++)
        {
            foreach (var role in (string[])["a", "b"])
            {
                var labels = new Dictionary<string, string> { ["app"] = "bench" };
                if (role == "a") labels["role"] = "client";
                var attached = await cluster.AttachAsync(n, $"p{n}{role}", "net", labels: labels, ns: "bench");
                pods[$"p{n}{role}"] = (n, attached.Ips[0]);
            }
        }
        var watchers = Enumerable.Range(1, 3).Select(n => new KernelWatch(cluster.Host(n))).ToList();
        try
        {
            var policy = new NetworkPolicy
            {
                Metadata = new ObjectMeta { Namespace = "bench", Name = "bench" },
                Spec = new NetworkPolicySpec
                {
                    PodSelector = new LabelSelector { MatchLabels = { ["app"] = "bench" } },
                    Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchLabels = { ["role"] = "client" } } } }, Ports = { new NetworkPolicyPort { Number = 80 } } } },
                },
            };
            policy = await client.NetworkPolicies.CreateAsync(policy);
            // On host n: may p<n>b be reached from client p1a on the port?
            byte[] Key(int n, int port) => Entry(pods[$"p{n}b"].Ip, pods["p1a"].Ip, port);
            await AwaitAll(watchers, n => (Key(n, 80), true));

            await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = "far" }, Spec = new NodeSpec { UnderlayIp = "10.99.0.250" } });
            var created = 0;
            async Task<(List<double> Policy, List<double> Label, List<double> Endpoint)> MeasureChanges()
            {
                var policyTimes = new List<double>();
                for (var i = 1; i <= changes; i++)
                {
                    var port = i % 2 == 1 ? 81 : 80;
                    policy.Spec.Ingress[0].Ports[0].Number = (uint)port;
                    var clock = Stopwatch.StartNew();
                    var wait = AwaitAll(watchers, n => (Key(n, port), true), clock);
                    policy = await client.NetworkPolicies.UpdateAsync(policy);
                    policyTimes.Add(await wait);
                }
                var labelTimes = new List<double>();
                var port0 = (int)policy.Spec.Ingress[0].Ports[0].Number;
                for (var i = 1; i <= changes; i++)
                {
                    var client1 = i % 2 == 0;
                    var endpoint = await client.Endpoints.GetAsync("bench", "p1a");
                    if (client1) endpoint.Metadata.Labels["role"] = "client";
                    else endpoint.Metadata.Labels.Remove("role");
                    var clock = Stopwatch.StartNew();
                    var wait = AwaitAll(watchers, n => (Key(n, port0), client1), clock);
                    await client.Endpoints.UpdateAsync(endpoint);
                    labelTimes.Add(await wait);
                }
                // A new endpoint (on a node without an agent) that the policy's peer selector picks:
                // its address is known only once the call returns, so the wait starts then (counting from before the call).
                var endpointTimes = new List<double>();
                for (var i = 1; i <= changes; i++)
                {
                    var clock = Stopwatch.StartNew();
                    var endpoint = await client.Endpoints.CreateAsync(new Endpoint
                    {
                        Metadata = new ObjectMeta { Namespace = "bench", Name = $"new-{created++}", Labels = { ["role"] = "client" } },
                        Spec = new EndpointSpec { Network = "net", Node = "far" },
                    });
                    endpointTimes.Add(await AwaitAll(watchers, n => (Entry(pods[$"p{n}b"].Ip, endpoint.Status.Ips[0], port0), true), clock));
                }
                return (policyTimes, labelTimes, endpointTimes);
            }

            var (quietPolicy, quietLabel, quietEndpoint) = await MeasureChanges();

            // Background: 1,000 endpoints of a node without an agent, in 50 label groups, and 200
            // more policies over the bench pods, each allowing one group on a port of its own: each
            // bench pod's ingress allow-list holds 4,000 entries on every node.
            await Task.WhenAll(Enumerable.Range(0, 1000).Select(i => client.Endpoints.CreateAsync(new Endpoint
            {
                Metadata = new ObjectMeta { Namespace = "bench", Name = $"far-{i}", Labels = { ["group"] = $"g{i % 50}" } },
                Spec = new EndpointSpec { Network = "net", Node = "far" },
            })));
            for (var k = 0; k < 200; k++)
            {
                await client.NetworkPolicies.CreateAsync(new NetworkPolicy
                {
                    Metadata = new ObjectMeta { Namespace = "bench", Name = $"bg-{k}" },
                    Spec = new NetworkPolicySpec
                    {
                        PodSelector = new LabelSelector { MatchLabels = { ["app"] = "bench" } },
                        Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchLabels = { ["group"] = $"g{k % 50}" } } } }, Ports = { new NetworkPolicyPort { Number = (uint)(9000 + k) } } } },
                    },
                });
            }
            var lastFar = (await client.Endpoints.GetAsync("bench", "far-999")).Status.Ips[0];
            await AwaitAll(watchers, n => (Entry(pods[$"p{n}b"].Ip, lastFar, 9000 + 999 % 50 + 150), true));
            var (busyPolicy, busyLabel, busyEndpoint) = await MeasureChanges();

            Console.WriteLine($"Change through the API until all 3 nodes' kernels hold it (ms, {changes} changes each; commit notification, then a read-back of the set):");
            Console.WriteLine("| change | table | p50 | p90 | p99 | max |");
            Console.WriteLine("|---|---|---|---|---|---|");
            Console.WriteLine(Row("policy port changed (every node re-renders its selected endpoints)", "6 pods, 1 policy", quietPolicy));
            Console.WriteLine(Row("peer label changed (every node adds or removes the peer)", "6 pods, 1 policy", quietLabel));
            Console.WriteLine(Row("new endpoint selected as a peer (every node adds it)", "6 pods, 1 policy", quietEndpoint));
            Console.WriteLine(Row("policy port changed", "+1,000 endpoints, +200 policies (4,000 entries per pod)", busyPolicy));
            Console.WriteLine(Row("peer label changed", "+1,000 endpoints, +200 policies (4,000 entries per pod)", busyLabel));
            Console.WriteLine(Row("new endpoint selected as a peer", "+1,000 endpoints, +200 policies (4,000 entries per pod)", busyEndpoint));
        }
        finally
        {
            foreach (var watcher in watchers) watcher.Dispose();
        }
    }

    private static string Row(string what, string table, List<double> times)
    {
        times.Sort();
        double At(double q) => times[Math.Min(times.Count - 1, (int)Math.Ceiling(q * times.Count) - 1)];
        return $"| {what} | {table} | {At(0.5):F1} | {At(0.9):F1} | {At(0.99):F1} | {times[^1]:F1} |";
    }

    private static byte[] Entry(string local, string peer, int port)
    {
        var key = new byte[16];
        IPAddress.Parse(local).TryWriteBytes(key, out _);
        IPAddress.Parse(peer).TryWriteBytes(key.AsSpan(4), out _);
        key[8] = 6;
        key[12] = (byte)(port >> 8);
        key[13] = (byte)port;
        return key;
    }

    /// <summary>Milliseconds from <paramref name="clock"/>'s start until every node's kernel shows the wanted (element, present).</summary>
    private static async Task<double> AwaitAll(List<KernelWatch> watchers, Func<int, (byte[] Key, bool Present)> wanted, Stopwatch? clock = null)
    {
        clock ??= Stopwatch.StartNew();
        var times = await Task.WhenAll(watchers.Select((w, i) => w.UntilAsync(wanted(i + 1), clock)));
        return times.Max();
    }

    /// <summary>
    /// A thread in one host's namespace that checks the policy sets after every commit there, and
    /// times a change at the commit that made it visible.
    /// </summary>
    private sealed class KernelWatch : IDisposable
    {
        private readonly NetworkNamespace _namespace;
        private readonly object _lock = new();
        private ((byte[] Key, bool Present) Wanted, long Start, TaskCompletionSource<double> Done)? _pending;
        private volatile bool _stop;
        private readonly Task _loop;

        public KernelWatch(string host)
        {
            _namespace = NetworkNamespace.Enter("/var/run/netns/" + host);
            var ready = new TaskCompletionSource();
            _loop = Task.Factory.StartNew(() => _namespace.Invoke(() => Run(ready)), TaskCreationOptions.LongRunning);
            ready.Task.Wait();
        }

        /// <summary>Milliseconds from <paramref name="clock"/>'s start to the commit that made the kernel hold <paramref name="wanted"/>.</summary>
        public Task<double> UntilAsync((byte[] Key, bool Present) wanted, Stopwatch clock)
        {
            var done = new TaskCompletionSource<double>(TaskCreationOptions.RunContinuationsAsynchronously);
            var start = Stopwatch.GetTimestamp() - (long)(clock.Elapsed.TotalSeconds * Stopwatch.Frequency);
            lock (_lock) _pending = (wanted, start, done);
            return done.Task.WaitAsync(TimeSpan.FromSeconds(10));
        }

        private void Run(TaskCompletionSource ready)
        {
            using var commits = NftCommits.Subscribe();
            using var nft = NftSocket.Open(AgentTable.Name);
            ready.SetResult();
            TaskCompletionSource<double>? checkedFor = null;
            long lastCommit = 0;
            while (!_stop)
            {
                ((byte[] Key, bool Present) Wanted, long Start, TaskCompletionSource<double> Done)? pending;
                lock (_lock) pending = _pending;
                var fresh = pending is { } f && !ReferenceEquals(checkedFor, f.Done);
                // A new expectation is checked at once (after taking the commits already announced);
                // otherwise the kernel is checked after each commit.
                var committed = commits.WaitNext(fresh ? TimeSpan.Zero : TimeSpan.FromMilliseconds(50));
                if (committed)
                {
                    lastCommit = Stopwatch.GetTimestamp();
                    while (commits.WaitNext(TimeSpan.Zero)) lastCommit = Stopwatch.GetTimestamp();
                }
                if (pending is not { } p || (!committed && !fresh)) continue;
                checkedFor = p.Done;
                // A point entry, or inside a range (neighbouring peers are joined into ranges).
                var shard = PolicyRuleset.Shard(AddressRange.Single(new IPAddress(p.Wanted.Key.AsSpan(0, 4))));
                var present = nft.ContainsElement(PolicyRuleset.Exact(FamilyLayout.V4, PolicyDirection.Ingress), p.Wanted.Key)
                    || nft.ContainsElement(PolicyRuleset.Ranges(FamilyLayout.V4, PolicyDirection.Ingress, shard), p.Wanted.Key);
                if (present != p.Wanted.Present) continue;
                // It became true at the latest commit seen (taken just before the check).
                var at = Math.Max(lastCommit, p.Start);
                lock (_lock)
                {
                    if (ReferenceEquals(_pending?.Done, p.Done)) _pending = null;
                }
                p.Done.TrySetResult((at - p.Start) * 1000.0 / Stopwatch.Frequency);
            }
        }

        public void Dispose()
        {
            _stop = true;
            _loop.Wait();
            _namespace.Dispose();
        }
    }
}
