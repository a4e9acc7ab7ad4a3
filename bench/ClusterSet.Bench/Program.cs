using System.Diagnostics;
using System.Net;
using ControlPlane.ClusterSet.Bench;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns;
using ControlPlane.Dns.Feed;
using ControlPlane.NodeAgent.Tests;
using DnsClient;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

// ClusterSet benchmarks.
//   latency [exports]: two clusters (a silo and one host with an agent each) on one underlay. For
//     each export in cluster a: time until its name resolves in cluster b's DNS
//     (<svc>.shop.svc.clusterset.local) and until a workload in b connects through the answer.
//     Beside it, in the same run, the same for a local service created in b (its cluster.local
//     name and ClusterIP): the reference a ClusterSet adds to.
//   rejoin [exports]: two silo processes; a exports N services. b's memory with N imports, the
//     time b needs to import them on joining, and again after a is killed, b has withdrawn them
//     and a restarts; beside it a plain client reading what b's link reads (list of exports,
//     services and endpoint sets).
var mode = args.Length > 0 ? args[0] : "latency";
var count = args.Length > 1 ? int.Parse(args[1]) : mode == "latency" ? 100 : 1000;
switch (mode)
{
    case "latency": await Latency.RunAsync(count); return 0;
    case "rejoin": await Rejoin.RunAsync(count); return 0;
    default: Console.Error.WriteLine("usage: latency [exports] | rejoin [exports]"); return 2;
}

namespace ControlPlane.ClusterSet.Bench
{
    internal static class Stats
    {
        public static double Percentile(List<double> values, double p)
        {
            var sorted = values.OrderBy(v => v).ToList();
            return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
        }

        public static string Row(string what, List<double> values) =>
            $"| {what} | {Percentile(values, 0.5):F0} | {Percentile(values, 0.99):F0} | {values.Max():F0} |";
    }

    internal static class Latency
    {
        private static string[] Member(string id, string range) =>
            [$"--ClusterSet:ClusterId={id}", "--ClusterSet:Name=bench", $"--ControlPlane:ServiceIpv4Cidr={range}", "--ClusterSet:PeerBookmarkSeconds=1"];

        public static async Task RunAsync(int exports)
        {
            await using var a = await Cluster.StartAsync(new Cluster.Layout(1, SiloArgs: Member("a", "10.96.0.0/16")));
            await using var b = await Cluster.StartAsync(new Cluster.Layout(1, a.Fabric, 11, Member("b", "10.97.0.0/16")));
            using var servers = new PodSockets();
            foreach (var (cluster, cidr) in new[] { (a, "10.10.0.0/16"), (b, "10.20.0.0/16") })
            {
                await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "shop" } });
                await cluster.Client.Networks.CreateAsync(new Network { Metadata = new() { Name = "pods" }, Spec = new() { Vni = 100, Ipv4Cidr = cidr } });
            }
            await a.AttachAsync(1, "web", "pods", labels: new Dictionary<string, string> { ["app"] = "web" }, ns: "shop");
            servers.Serve("/var/run/netns/" + a.Pod("shopweb"), "web-a", 8080);
            await b.AttachAsync(1, "local", "pods", labels: new Dictionary<string, string> { ["app"] = "local" }, ns: "shop");
            servers.Serve("/var/run/netns/" + b.Pod("shoplocal"), "local-b", 8080);
            await b.AttachAsync(1, "client", "pods", ns: "shop");
            var client = "/var/run/netns/" + b.Pod("shopclient");
            await a.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "b" }, Spec = new() { Addresses = { "unix:" + b.SiloSocket } } });
            await b.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "a" }, Spec = new() { Addresses = { "unix:" + a.SiloSocket } } });

            var builder = Host.CreateApplicationBuilder(["--Logging:LogLevel:Default=Warning", "--Dns:Listen=127.0.0.1:0", $"--Dns:ControlPlane=unix:{b.SiloSocket}",
                "--Dns:ServiceRanges:0=10.97.0.0/16", "--Dns:ReverseZones:0=10.in-addr.arpa"]);
            builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
            using var dns = builder.Build();
            await dns.StartAsync();
            await dns.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
            var resolver = new LookupClient(new LookupClientOptions(new NameServer(dns.Services.GetRequiredService<DnsListenerService>().LocalEndPoint!))
                { UseCache = false, Timeout = TimeSpan.FromSeconds(1), Retries = 0, ThrowDnsErrors = false });

            var (exportResolved, exportReached, localResolved, localReached) = (new List<double>(), new List<double>(), new List<double>(), new List<double>());
            for (var i = 0; i < exports; i++)
            {
                await a.Client.Services.CreateAsync(Service($"x{i}", "web"));
                var clock = Stopwatch.StartNew();
                await a.Client.ServiceExports.CreateAsync(new ServiceExport { Metadata = new() { Name = $"x{i}", Namespace = "shop" } });
                var (resolved, reached) = await UntilReachableAsync(resolver, $"x{i}.shop.svc.clusterset.local", client, "web-a", clock);
                exportResolved.Add(resolved);
                exportReached.Add(reached);

                clock.Restart();
                await b.Client.Services.CreateAsync(Service($"l{i}", "local"));
                (resolved, reached) = await UntilReachableAsync(resolver, $"l{i}.shop.svc.cluster.local", client, "local-b", clock);
                localResolved.Add(resolved);
                localReached.Add(reached);
            }
            await dns.StopAsync();
            Console.WriteLine($"{exports} exports, one at a time, each timed from the create that starts it (ms).");
            Console.WriteLine("| measure | p50 | p99 | max |");
            Console.WriteLine("|---|---|---|---|");
            Console.WriteLine(Stats.Row("export in a → resolvable in b (clusterset.local)", exportResolved));
            Console.WriteLine(Stats.Row("export in a → reachable from b (ClusterSetIP, over VXLAN)", exportReached));
            Console.WriteLine(Stats.Row("reference: service in b → resolvable in b (cluster.local)", localResolved));
            Console.WriteLine(Stats.Row("reference: service in b → reachable in b (ClusterIP)", localReached));
            Console.WriteLine($"ratio export/local, p50: resolvable {Stats.Percentile(exportResolved, 0.5) / Stats.Percentile(localResolved, 0.5):F2}, reachable {Stats.Percentile(exportReached, 0.5) / Stats.Percentile(localReached, 0.5):F2}");
        }

        private static Service Service(string name, string app) => new()
        {
            Metadata = new() { Name = name, Namespace = "shop" },
            Spec = new() { Network = "pods", Selector = { ["app"] = app }, Ports = { new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80, TargetPortNumber = 8080 } } },
        };

        /// <summary>Asks the name until it has an address, then connects to it until the server answers: both times in ms.</summary>
        private static async Task<(double Resolved, double Reached)> UntilReachableAsync(LookupClient resolver, string name, string client, string server, Stopwatch clock)
        {
            IPAddress? address = null;
            while (address is null)
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"{name} did not resolve within 60 s");
                var response = await resolver.QueryAsync(name, QueryType.A);
                address = response.Answers.ARecords().FirstOrDefault()?.Address;
            }
            var resolved = clock.Elapsed.TotalMilliseconds;
            while (true)
            {
                if (clock.Elapsed > TimeSpan.FromSeconds(60)) throw new TimeoutException($"{name} ({address}) was not reachable within 60 s");
                var probe = await PodSockets.TcpAsync(client, address.ToString(), 80, TimeSpan.FromMilliseconds(200));
                if (probe.Result == ProbeResult.Answered && probe.Answer.StartsWith(server, StringComparison.Ordinal)) break;
                if (probe.Result != ProbeResult.TimedOut) await Task.Delay(2);
            }
            return (resolved, clock.Elapsed.TotalMilliseconds);
        }
    }

    internal static class Rejoin
    {
        public static async Task RunAsync(int exports)
        {
            var root = Path.Combine(Path.GetTempPath(), "cp-rejoin-" + Guid.NewGuid().ToString("N")[..8]);
            Directory.CreateDirectory(root);
            SiloProcess? a = null, b = null;
            try
            {
                a = await SiloProcess.StartAsync(root, "a", "10.96.0.0/16");
                b = await SiloProcess.StartAsync(root, "b", "10.97.0.0/16");
                await a.Client.Namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "shop" } });
                await b.Client.Namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "shop" } });
                await a.Client.Networks.CreateAsync(new Network { Metadata = new() { Name = "pods" }, Spec = new() { Vni = 100, Ipv4Cidr = "10.10.0.0/16" } });
                await a.Client.Nodes.CreateAsync(new Node { Metadata = new() { Name = "n1" }, Spec = new() { UnderlayIp = "10.254.0.1" } });
                for (var e = 0; e < 4; e++)
                {
                    await a.Client.Endpoints.CreateAsync(new Endpoint { Metadata = new() { Name = $"web-{e}", Namespace = "shop", Labels = { ["app"] = "web" } }, Spec = new() { Network = "pods", Node = "n1", Ready = true } });
                }
                var created = Stopwatch.StartNew();
                await Parallel.ForAsync(0, exports, new ParallelOptions { MaxDegreeOfParallelism = 32 }, async (i, _) =>
                {
                    await a.Client.Services.CreateAsync(new Service
                    {
                        Metadata = new() { Name = $"s{i}", Namespace = "shop" },
                        Spec = new() { Network = "pods", Selector = { ["app"] = "web" }, Ports = { new ServicePort { Name = "http", Port = 80, TargetPortNumber = 8080 } } },
                    });
                    await a.Client.ServiceExports.CreateAsync(new ServiceExport { Metadata = new() { Name = $"s{i}", Namespace = "shop" } });
                });
                Console.WriteLine($"{exports} services with 4 endpoints each exported by a in {created.Elapsed.TotalSeconds:F1} s.");
                await Imports(a.Client, exports, TimeSpan.FromSeconds(120)); // a imports its own exports: its state is settled
                // b imports from a once each counts the other: a's side first, out of the timing.
                await a.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "b" }, Spec = new() { Addresses = { "unix:" + b.Socket } } });
                var (before, heapBefore) = (b.RssKiB(), b.LiveHeapBytes());
                var join = Stopwatch.StartNew();
                await b.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "a" }, Spec = new() { Addresses = { "unix:" + a.Socket } } });
                await Imports(b.Client, exports, TimeSpan.FromSeconds(300));
                var joined = join.Elapsed;
                var (after, heapAfter) = (b.RssKiB(), b.LiveHeapBytes());

                var reference = Stopwatch.StartNew();
                var read = await ReadAllAsync(a.Client);
                var listed = reference.Elapsed;

                a.Kill();
                await Imports(b.Client, 0, TimeSpan.FromSeconds(120));
                var restart = Stopwatch.StartNew();
                a = await SiloProcess.StartAsync(root, "a", "10.96.0.0/16");
                var started = restart.Elapsed;
                await Imports(b.Client, exports, TimeSpan.FromSeconds(300));
                var resynced = restart.Elapsed;
                var (rejoined, heapRejoined) = (b.RssKiB(), b.LiveHeapBytes());

                Console.WriteLine("| measure | value |");
                Console.WriteLine("|---|---|");
                Console.WriteLine($"| b: imports of a's {exports} exports, from ClusterPeer create to the last import stored | {joined.TotalSeconds:F2} s |");
                Console.WriteLine($"| b: live GC heap before peering / with {exports} imports / after a's rejoin (dotnet-gcdump) | {Mib(heapBefore)} / {Mib(heapAfter)} / {Mib(heapRejoined)} MiB ({(heapAfter - heapBefore) / (double)exports:F0} bytes per import) |");
                Console.WriteLine($"| b: resident memory (server GC) before peering / with {exports} imports / after a's rejoin | {before / 1024.0:F0} / {after / 1024.0:F0} / {rejoined / 1024.0:F0} MiB |");
                Console.WriteLine($"| a: killed (SIGKILL), b withdrew all; a restarted: cold start to serving | {started.TotalSeconds:F2} s |");
                Console.WriteLine($"| b: from a's restart to all {exports} imports back | {resynced.TotalSeconds:F2} s |");
                Console.WriteLine($"| reference: a plain client listing what b's link reads from a ({read} objects) | {listed.TotalSeconds:F2} s |");
            }
            finally
            {
                a?.Dispose();
                b?.Dispose();
                Directory.Delete(root, recursive: true);
            }
        }

        private static string Mib(long bytes) => bytes < 0 ? "–" : (bytes / 1048576.0).ToString("F1", System.Globalization.CultureInfo.InvariantCulture);

        private static async Task<int> ReadAllAsync(ControlPlaneClient client)
        {
            var total = 0;
            var page = string.Empty;
            do { var r = await client.ServiceExports.ListAsync(new ListRequest { PageSize = 1000, PageToken = page }); total += r.ServiceExports.Count; page = r.NextPageToken; } while (page.Length > 0);
            do { var r = await client.Services.ListAsync(new ListRequest { PageSize = 1000, PageToken = page }); total += r.Services.Count; page = r.NextPageToken; } while (page.Length > 0);
            do
            {
                var r = await new ServiceEndpointSets.ServiceEndpointSetsClient(client.Invoker).ListAsync(new ListRequest { PageSize = 1000, PageToken = page });
                total += r.ServiceEndpoints.Count;
                page = r.NextPageToken;
            }
            while (page.Length > 0);
            return total;
        }

        /// <summary>Waits until the silo holds exactly <paramref name="count"/> imports with endpoints (counted by listing).</summary>
        private static async Task Imports(ControlPlaneClient client, int count, TimeSpan within)
        {
            var clock = Stopwatch.StartNew();
            while (true)
            {
                var total = 0;
                var page = string.Empty;
                do
                {
                    var r = await client.ServiceImports.ListAsync(new ListRequest { PageSize = 1000, PageToken = page });
                    total += r.ServiceImports.Count(i => i.Status.Clusters.Any(c => c.Endpoints.Count > 0));
                    page = r.NextPageToken;
                }
                while (page.Length > 0);
                if (total == count) return;
                if (clock.Elapsed > within) throw new TimeoutException($"{total} imports, not {count}, after {within}");
                await Task.Delay(50);
            }
        }
    }

    /// <summary>A silo process on a unix socket under the bench's directory.</summary>
    internal sealed class SiloProcess : IDisposable
    {
        private readonly Process _process;

        private SiloProcess(Process process, string socket)
        {
            _process = process;
            Socket = socket;
            Client = new ControlPlaneClient("unix:" + socket);
        }

        public string Socket { get; }

        public ControlPlaneClient Client { get; }

        public static async Task<SiloProcess> StartAsync(string root, string id, string serviceRange)
        {
            var socket = Path.Combine(root, id + ".sock");
            var dll = Path.Combine(AppContext.BaseDirectory, "ControlPlane.Silo.dll");
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in (string[])[dll, "--Silo:Port=0", $"--Silo:DataDirectory={Path.Combine(root, id)}", $"--Silo:UnixSocket={socket}",
                         "--Dns:Enabled=false", "--Logging:LogLevel:Default=Warning", $"--ClusterSet:ClusterId={id}", "--ClusterSet:Name=bench",
                         $"--ControlPlane:ServiceIpv4Cidr={serviceRange}", "--ClusterSet:PeerGracePeriod=00:00:03", "--ClusterSet:PeerBookmarkSeconds=1"])
            {
                info.ArgumentList.Add(arg);
            }
            var process = Process.Start(info)!;
            process.OutputDataReceived += (_, _) => { };
            process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine($"[{id}] {e.Data}"); };
            process.BeginOutputReadLine();
            process.BeginErrorReadLine();
            var silo = new SiloProcess(process, socket);
            var clock = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    await silo.Client.GetClusterInfoAsync(Calls.Within(TimeSpan.FromSeconds(1)));
                    return silo;
                }
                catch (Grpc.Core.RpcException) when (clock.Elapsed < TimeSpan.FromSeconds(60) && !process.HasExited)
                {
                    await Task.Delay(20);
                }
            }
        }

        public long RssKiB()
        {
            var line = File.ReadLines($"/proc/{_process.Id}/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
            return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1]);
        }

        /// <summary>The live objects of the GC heap after a full collection (dotnet-gcdump at $GCDUMP), or -1 without the tool.</summary>
        public long LiveHeapBytes()
        {
            var tool = Environment.GetEnvironmentVariable("GCDUMP");
            if (string.IsNullOrEmpty(tool)) return -1;
            var dump = Path.Combine(Path.GetTempPath(), $"cp-bench-{_process.Id}-{Guid.NewGuid():N}.gcdump");
            try
            {
                Run(tool, "collect", "-p", _process.Id.ToString(), "-o", dump);
                var report = Run(tool, "report", dump);
                var line = report.Split('\n').First(l => l.Contains("GC Heap bytes", StringComparison.Ordinal));
                return long.Parse(line.Trim().Split(' ')[0].Replace(",", ""), System.Globalization.CultureInfo.InvariantCulture);
            }
            finally
            {
                File.Delete(dump);
            }
        }

        private static string Run(string file, params string[] args)
        {
            var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in args) info.ArgumentList.Add(arg);
            using var process = Process.Start(info)!;
            var output = process.StandardOutput.ReadToEnd();
            process.WaitForExit();
            return output;
        }

        public void Kill()
        {
            _process.Kill();
            _process.WaitForExit();
        }

        public void Dispose()
        {
            Client.Dispose();
            if (!_process.HasExited) Kill();
            _process.Dispose();
        }
    }
}
