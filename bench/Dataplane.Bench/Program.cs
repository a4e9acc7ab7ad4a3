using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Netns;

// Programs N entries of each kind from one long-lived netlink socket in a private namespace
// holding one VXLAN device (as bench/reference/iproute2-rate.sh does with iproute2):
// FDB per MAC, permanent neighbours, routes each with its own onlink gateway, and routes through
// nexthop objects. Entries use 198.18.0.0/15 (remote VTEPs) and 10.0.0.0/8.
var counts = args.Length > 0 ? args.Select(int.Parse).ToArray() : [10_000, 20_000];
const byte Protocol = 252;
var ns = "cpbench" + Environment.ProcessId;
Run("ip", "netns", "add", ns);
try
{
    Run("ip", "netns", "exec", ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1");
    Run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up");
    using var space = NetworkNamespace.Enter(ns);
    Console.WriteLine("| kind | entries | seconds | entries/s |");
    Console.WriteLine("|---|---:|---:|---:|");
    foreach (var n in counts)
    {
        space.Invoke(() =>
        {
            using var rtnl = RouteNetlink.Open();
            rtnl.CreateVxlan("vx0", 100, IPAddress.Parse("198.19.0.1"), 4789, 1450);
            var vx = rtnl.FindLink("vx0")!.Index;
            rtnl.SetLink(vx, up: true);
            rtnl.AddAddress(vx, IPAddress.Parse("10.0.0.1"), 32);
            Measure("fdb-mac", n, () => Fill(rtnl.Batch(), n, (b, i) => b.AppendFdb(vx, Mac(i), Remote(i))));
            Measure("neigh", n, () => Fill(rtnl.Batch(), n, (b, i) => b.ReplaceNeighbour(vx, Gateway(i), Mac(i))));
            Measure("route (gateway each)", n, () => Fill(rtnl.Batch(), n, (b, i) => b.ReplaceRoute(Net(i), 24, Gateway(i), vx, Protocol, onlink: true)));
            Measure("route delete", n, () => Fill(rtnl.Batch(), n, (b, i) => b.DeleteRoute(Net(i), 24, vx, Protocol)));
            Measure("nexthop + route", n, () => Fill(rtnl.Batch(), n, (b, i) => b.AddNexthop((uint)(i + 1), Gateway(i), vx, Protocol).ReplaceRouteVia(Net(i), 24, (uint)(i + 1), Protocol)));
            rtnl.DeleteLink(vx);
        });
    }
}
finally
{
    Run("ip", "netns", "del", ns);
}

static void Fill(RequestBatch batch, int n, Action<RequestBatch, int> add)
{
    for (var i = 0; i < n; i++) add(batch, i);
    if (batch.Execute() is [var (change, error), ..]) throw new InvalidOperationException($"{change}: {error.Message}");
}

static void Measure(string kind, int n, Action work)
{
    var clock = Stopwatch.StartNew();
    work();
    var seconds = clock.Elapsed.TotalSeconds;
    Console.WriteLine($"| {kind} | {n} | {seconds:F3} | {n / seconds:F0} |");
}

static PhysicalAddress Mac(int i) => new([0x02, 0, 0, (byte)(i >> 16), (byte)(i >> 8), (byte)i]);
static IPAddress Remote(int i) => new([198, 18, (byte)(i >> 8), (byte)i]);
static IPAddress Gateway(int i) => new([10, 0, (byte)(1 + (i >> 8)), (byte)(i & 255)]);
static IPAddress Net(int i) => new([10, (byte)(1 + ((i >> 8) & 255)), (byte)(i & 255), 0]);

static void Run(params string[] command)
{
    var info = new ProcessStartInfo(command[0]);
    foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
    using var process = Process.Start(info)!;
    process.WaitForExit();
}
