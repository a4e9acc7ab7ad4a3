using System.Diagnostics;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Services;
using ControlPlane.NodeAgent.Table;

// Programs S services x E endpoints into the agent's table (inet controlplane) in a private
// namespace, the way the node agent does: the whole set in one transaction, a restart that reads
// the kernel back, and single changes, each timed end to end (calculation + netlink + commit).
var sizes = args.Length > 0 ? args.Select(int.Parse).ToArray() : [1000, 10000];
const int Endpoints = 5, Reps = 20;
Console.WriteLine($"| services | elements | full sync ms | restart (read back, no change) ms | 1 endpoint replaced ms (median / p99 of {Reps}) | new service ms | service deleted ms |");
Console.WriteLine("|---|---|---|---|---|---|---|");
foreach (var size in sizes)
{
    var name = "cpsb" + Guid.NewGuid().ToString("N")[..8];
    Run("ip", "netns", "add", name);
    try
    {
        using var ns = NetworkNamespace.Enter(name);
        Console.WriteLine(ns.Invoke(() => Measure(size)));
    }
    finally
    {
        Run("ip", "netns", "del", name);
    }
}

static string Measure(int size)
{
    using var nft = NftSocket.Open(AgentTable.Name);
    var networks = Networks();
    var services = Enumerable.Range(0, size).Select(s => (Key: $"default/svc-{s:D5}", Service: Service(s), Endpoints: EndpointsOf(s, 0))).ToList();
    var clock = Stopwatch.StartNew();
    var groups = services.Select(s => (s.Key, ServiceCalculator.ForService(s.Service, s.Endpoints, networks))).ToList();
    var programmer = new TableProgrammer(nft);
    programmer.Apply(groups, complete: true);
    var full = clock.Elapsed.TotalMilliseconds;
    var elements = groups.Sum(g => g.Item2.Elements.Count);

    clock.Restart();
    var restarted = new TableProgrammer(nft);
    var outcome = restarted.Apply(services.Select(s => (s.Key, ServiceCalculator.ForService(s.Service, s.Endpoints, networks))).ToList(), complete: true);
    var restart = clock.Elapsed.TotalMilliseconds;
    if (outcome.ElementsAdded + outcome.ElementsRemoved != 0) throw new InvalidOperationException("restart changed elements");

    var changes = new List<double>();
    var middle = services[size / 2];
    for (var r = 1; r <= Reps; r++)
    {
        clock.Restart();
        var o = restarted.Apply([(middle.Key, ServiceCalculator.ForService(middle.Service, EndpointsOf(size / 2, r), networks))], complete: false);
        if (o.ElementsAdded == 0) throw new InvalidOperationException("no change: " + o);
        changes.Add(clock.Elapsed.TotalMilliseconds);
    }
    changes.Sort();
    // The kernel holds the last replacement: read the backends map back.
    var latest = ServiceRuleset.Backend(System.Net.IPAddress.Parse(EndpointsOf(size / 2, Reps).Endpoints[0].Ips[0]), 8080);
    if (!nft.ListElements("be4").Any(e => e.Data is { } d && d.AsSpan().SequenceEqual(latest))) throw new InvalidOperationException("the change is not in the kernel");
    clock.Restart();
    restarted.Apply([("default/new", ServiceCalculator.ForService(Service(size + 1), EndpointsOf(size + 1, 0), networks))], complete: false);
    var added = clock.Elapsed.TotalMilliseconds;
    clock.Restart();
    restarted.Apply([("default/new", ElementGroup.Empty)], complete: false);
    var deleted = clock.Elapsed.TotalMilliseconds;
    return $"| {size} | {elements} | {full:F0} | {restart:F0} | {changes[Reps / 2]:F2} / {changes[^1]:F2} | {added:F2} | {deleted:F2} |";
}

// The services' network: its range holds every endpoint below (10.180.0.0 – 10.229.255.255).
static Dictionary<string, Network> Networks() => new() { ["n"] = new Network { Metadata = new ObjectMeta { Name = "n" }, Spec = new NetworkSpec { Vni = 1, Ipv4Cidr = "10.128.0.0/9" } } };

static Service Service(int s) => new()
{
    Metadata = new ObjectMeta { Name = $"svc-{s:D5}", Namespace = "default" },
    Spec = new ServiceSpec { Network = "n", Ports = { new ServicePort { Protocol = Protocol.Tcp, Port = 80, TargetPortNumber = 8080 } } },
    Status = new ServiceStatus { ClusterIps = { $"172.30.{(s + 1) / 256 % 256}.{(s + 1) % 256}" } },
};

// Endpoint 0 of each service changes address with the generation (a replaced endpoint).
static ServiceEndpoints EndpointsOf(int s, int generation)
{
    var set = new ServiceEndpoints();
    for (var e = 0; e < Endpoints; e++)
    {
        var k = s * Endpoints + e + 1 + (e == 0 ? generation * 7919 : 0);
        set.Endpoints.Add(new EndpointAddress { Ips = { $"10.{180 + k / 65536 % 50}.{k / 256 % 256}.{k % 256}" }, Ready = true });
    }
    return set;
}

static void Run(params string[] command)
{
    using var process = Process.Start(command[0], command[1..])!;
    process.WaitForExit();
    if (process.ExitCode != 0) throw new InvalidOperationException(string.Join(' ', command) + " failed");
}
