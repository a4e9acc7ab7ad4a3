using System.Diagnostics;
using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Contracts.V1;

// A control plane, three hosts (network namespaces on a bridge in a namespace of its own), a node
// agent on each, one network and two workloads per host; then every workload pings every other
// across hosts. Everything it creates is removed at the end, also on Ctrl+C or failure.
// Nothing is added to the root namespace: the silo listens on a unix socket.
// "--convergence N" is the demo's own option, not a setting.
if (ControlPlane.Contracts.Hosting.ProgramInfo.EarlyExit(args is ["--convergence", _] ? [] : args, "ControlPlane.Demo", """
    Usage: ControlPlane.Demo [--convergence N]   (as root)

    Starts a control plane on a unix socket, three hosts (network namespaces on a bridge in a
    namespace of its own) with a node agent each, one network and two workloads per host; then
    every workload pings every other across hosts, and the kernel state of one host is shown.
    Everything it creates is removed at the end, also on Ctrl+C or failure.

      --convergence N   then create N endpoints and report how long until every host programmed them
    """) is { } exit)
{
    return exit;
}
if (Environment.UserName != "root")
{
    Console.Error.WriteLine("The demo creates network namespaces: run it as root.");
    return 2;
}
var id = Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture);
var work = Path.Combine(Path.GetTempPath(), "controlplane-demo-" + id);
Directory.CreateDirectory(work);
var socket = Path.Combine(work, "silo.sock");
var fabric = "cpdemo-fabric";
var namespaces = new List<string>();
var processes = new List<Process>();
// The silo and the agent are built beside the demo, each in its own output directory.
var root = new DirectoryInfo(AppContext.BaseDirectory);
while (root is not null && !File.Exists(Path.Combine(root.FullName, "ControlPlane.sln"))) root = root.Parent;
var configuration = new DirectoryInfo(AppContext.BaseDirectory).Parent!.Name; // …/bin/<configuration>/net10.0/
string Binary(string project, string assembly) => Path.Combine(root!.FullName, "src", project, "bin", configuration, "net10.0", assembly);
using var stop = new CancellationTokenSource();
Console.CancelKeyPress += (_, e) => { e.Cancel = true; stop.Cancel(); };

try
{
    Step("starting the control plane (silo on a unix socket)");
    processes.Add(Start("dotnet", Binary("Silo", "ControlPlane.Silo.dll"), "--Silo:Port=0", $"--Silo:DataDirectory={work}/data",
        $"--Silo:UnixSocket={socket}", "--Dns:Enabled=false", "--Logging:LogLevel:Default=Warning"));
    using var client = new ControlPlaneClient("unix:" + socket);
    if (!await Until(async () => { try { await client.Namespaces.ListAsync(new ListRequest()); return true; } catch (RpcException) { return false; } }))
    {
        throw new InvalidOperationException("the silo did not start");
    }

    Step("building three hosts on an underlay bridge (10.99.0.0/24)");
    Namespace(fabric);
    Sh("ip", "-n", fabric, "link", "add", "br0", "type", "bridge");
    Sh("ip", "-n", fabric, "link", "set", "br0", "up");
    for (var n = 1; n <= 3; n++)
    {
        var host = $"cpdemo-host{n}";
        Namespace(host);
        Sh("ip", "-n", fabric, "link", "add", $"h{n}", "type", "veth", "peer", "name", "eth0", "netns", host);
        Sh("ip", "-n", fabric, "link", "set", $"h{n}", "master", "br0", "up");
        Sh("ip", "-n", host, "addr", "add", $"10.99.0.{n}/24", "dev", "eth0");
        Sh("ip", "-n", host, "link", "set", "eth0", "up");
        Sh("ip", "-n", host, "link", "set", "lo", "up");
        processes.Add(Start("ip", "netns", "exec", host, "dotnet", Binary("NodeAgent", "ControlPlane.NodeAgent.dll"),
            $"--Agent:ControlPlane=unix:{socket}", $"--Agent:NodeName=host{n}", $"--Agent:UnderlayIp=10.99.0.{n}",
            $"--Agent:AttachSocket={work}/agent{n}.sock", "--Logging:LogLevel:Default=Warning"));
    }

    Step("creating namespace 'demo' and network 'blue' (VNI 100, 10.20.0.0/16)");
    await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "demo" } });
    await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });

    var workloads = new List<(string Name, string Ip)>();
    for (var n = 1; n <= 3; n++)
    {
        using var agentChannel = ControlPlaneChannel.ForUnixSocket($"{work}/agent{n}.sock");
        var agent = new Agent.AgentClient(agentChannel);
        for (var k = 1; k <= 2; k++)
        {
            var name = $"cpdemo-w{n}{k}";
            Namespace(name);
            AttachResponse? attached = null;
            var done = await Until(async () =>
            {
                try
                {
                    attached = await agent.AttachAsync(new AttachRequest
                    {
                        Namespace = "demo", Name = $"w{n}{k}", Network = "blue", NetnsPath = $"/var/run/netns/{name}", InterfaceName = "eth0",
                    }, Calls.Within(TimeSpan.FromSeconds(20)));
                    return true;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable)
                {
                    return false; // the agent is still starting
                }
            });
            if (!done || attached is null) throw new InvalidOperationException($"host{n}'s agent did not attach {name}");
            workloads.Add((name, attached.Ips[0]));
            Console.WriteLine($"    w{n}{k} on host{n}: {attached.Ips[0]} (MAC {attached.Mac}, gateway {attached.Ipv4Gateway}, MTU {attached.Mtu})");
        }
    }

    Step("every workload pings every other");
    var failures = 0;
    foreach (var (from, _) in workloads)
    {
        foreach (var (to, ip) in workloads.Where(w => w.Name != from))
        {
            var ok = false;
            await Until(() => Task.FromResult(ok = Run("ip", "netns", "exec", from, "ping", "-c", "1", "-W", "1", ip).Code == 0), TimeSpan.FromSeconds(10));
            Console.WriteLine($"    {from[7..]} -> {to[7..]} ({ip}): {(ok ? "ok" : "FAILED")}");
            failures += ok ? 0 : 1;
        }
    }
    Step("host1's overlay (ip route show table 100100; bridge fdb show dev cpvx100)");
    Console.WriteLine(Run("ip", "-n", "cpdemo-host1", "route", "show", "table", "100100").Output);
    Console.WriteLine(Run("ip", "netns", "exec", "cpdemo-host1", "bridge", "fdb", "show", "dev", "cpvx100").Output);
    Console.WriteLine(failures == 0 ? "All workloads reach each other." : $"{failures} pings failed.");
    if (args is ["--convergence", var count] && failures == 0)
    {
        await MeasureConvergence(int.Parse(count, System.Globalization.CultureInfo.InvariantCulture), client);
    }
    return failures == 0 ? 0 : 1;
}
finally
{
    Step("cleaning up");
    foreach (var process in Enumerable.Reverse(processes))
    {
        if (!process.HasExited) { process.Kill(entireProcessTree: true); process.WaitForExit(); }
    }
    foreach (var name in Enumerable.Reverse(namespaces)) Run("ip", "netns", "del", name);
    Directory.Delete(work, recursive: true);
}

// Convergence: from the Attach call on host1 (which creates the endpoint through the API and wires
// it) until workloads on host2 and host3 both reach the new endpoint, probed with ICMP echo from
// threads inside those workloads' namespaces (no process start-up in the figure).
// Run: sudo dotnet run -c Release --project demo/ControlPlane.Demo -- --convergence 200
async Task MeasureConvergence(int count, ControlPlaneClient client)
{
    Step($"convergence: {count} endpoints attached on host1, each until reachable from host2 and host3");
    using var agentChannel = ControlPlaneChannel.ForUnixSocket($"{work}/agent1.sock");
    var agent = new Agent.AgentClient(agentChannel);
    using var probe2 = ControlPlane.Dataplane.Linux.Netns.NetworkNamespace.Enter("cpdemo-w21");
    using var probe3 = ControlPlane.Dataplane.Linux.Netns.NetworkNamespace.Enter("cpdemo-w31");
    var attach = new List<double>();
    var reachable = new List<double>();
    for (var i = 0; i < count; i++)
    {
        var name = $"cpdemo-c{i}";
        Namespace(name);
        var clock = Stopwatch.StartNew();
        var attached = await agent.AttachAsync(new AttachRequest
        {
            Namespace = "demo", Name = $"c{i}", Network = "blue", NetnsPath = $"/var/run/netns/{name}", InterfaceName = "eth0",
        }, Calls.Within(TimeSpan.FromSeconds(20)));
        attach.Add(clock.Elapsed.TotalMilliseconds);
        var target = System.Net.IPAddress.Parse(attached.Ips[0]);
        foreach (var probe in new[] { probe2, probe3 })
        {
            probe.Invoke(() =>
            {
                using var ping = new System.Net.NetworkInformation.Ping();
                while (ping.Send(target, 20).Status != System.Net.NetworkInformation.IPStatus.Success && clock.Elapsed < TimeSpan.FromSeconds(10)) { }
            });
        }
        reachable.Add(clock.Elapsed.TotalMilliseconds);
    }
    static double P(List<double> values, double p) { var sorted = values.Order().ToList(); return sorted[Math.Min(sorted.Count - 1, (int)(p * sorted.Count))]; }
    var api = new List<double>();
    for (var i = 0; i < count; i++)
    {
        var clock = Stopwatch.StartNew();
        await client.Endpoints.CreateAsync(new Endpoint { Metadata = new ObjectMeta { Namespace = "demo", Name = $"api{i}" }, Spec = new EndpointSpec { Network = "blue", Node = "host2", Ready = true } });
        api.Add(clock.Elapsed.TotalMilliseconds);
    }
    Console.WriteLine("| measure | endpoints | p50 ms | p99 ms | max ms |");
    Console.WriteLine("|---|---:|---:|---:|---:|");
    Console.WriteLine($"| CreateEndpoint alone (API) | {count} | {P(api, 0.5):F1} | {P(api, 0.99):F1} | {api.Max():F1} |");
    Console.WriteLine($"| Attach (API create + wiring) | {count} | {P(attach, 0.5):F1} | {P(attach, 0.99):F1} | {attach.Max():F1} |");
    Console.WriteLine($"| Attach → reachable from the two other hosts | {count} | {P(reachable, 0.5):F1} | {P(reachable, 0.99):F1} | {reachable.Max():F1} |");
}

void Step(string text) => Console.WriteLine($"==> {text}");

void Namespace(string name)
{
    Run("ip", "netns", "del", name); // a leftover of an interrupted run
    Sh("ip", "netns", "add", name);
    namespaces.Add(name);
}

async Task<bool> Until(Func<Task<bool>> condition, TimeSpan? within = null)
{
    var clock = Stopwatch.StartNew();
    while (!await condition())
    {
        if (clock.Elapsed > (within ?? TimeSpan.FromSeconds(30)) || stop.IsCancellationRequested) return false;
        await Task.Delay(200);
    }
    return true;
}

static Process Start(params string[] command)
{
    var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
    var process = Process.Start(info)!;
    process.OutputDataReceived += (_, _) => { };
    process.ErrorDataReceived += (_, e) => { if (e.Data is not null) Console.Error.WriteLine("    " + e.Data); };
    process.BeginOutputReadLine();
    process.BeginErrorReadLine();
    return process;
}

static (int Code, string Output) Run(params string[] command)
{
    var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
    foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
    using var process = Process.Start(info)!;
    var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
    process.WaitForExit();
    return (process.ExitCode, output);
}

static void Sh(params string[] command)
{
    var (code, output) = Run(command);
    if (code != 0) throw new InvalidOperationException($"{string.Join(' ', command)}: {output}");
}
