using System.Diagnostics;
using ControlPlane.Cli.Bench;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Google.Protobuf;

// Usage: ControlPlane.Cli.Bench <silo-address> <netctl.dll> [objects] [rounds]
// Each round: N objects through the API client (PARALLEL concurrent calls, as netctl's --parallel),
// then the same N objects (in a namespace of their own) by `netctl apply -f` as a process, then the
// same apply again (every object unchanged). The first round warms the silo up and is reported too.
var address = args.Length > 0 ? args[0] : "http://127.0.0.1:7070";
var netctl = args.Length > 1 ? args[1] : "netctl.dll";
var count = args.Length > 2 ? int.Parse(args[2]) : 1000;
var rounds = args.Length > 3 ? int.Parse(args[3]) : 3;
var parallel = int.Parse(Environment.GetEnvironmentVariable("PARALLEL") ?? "16");
using var client = new ControlPlaneClient(address);
var run = Guid.NewGuid().ToString("N")[..6];
var network = $"bench-{run}";
var node = $"node-{run}";
await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = node }, Spec = new NodeSpec { UnderlayIp = "10.255.0.1" } });
var second = Random.Shared.Next(0, 16) * 16;
await client.Networks.CreateAsync(new Network
{
    Metadata = new ObjectMeta { Name = network },
    Spec = new NetworkSpec { Vni = (uint)Random.Shared.Next(1000, 1 << 24), Ipv4Cidr = $"10.{second}.0.0/12", Ipv4BlockPrefixLength = 20 },
});
var directory = Directory.CreateTempSubdirectory("cliw-bench-");
var startup = await TimeProcessAsync(netctl, ["--version"]);

Console.WriteLine($"# netctl apply vs API client, {count} objects (80% endpoints, 10% services, 10% policies), {Environment.ProcessorCount} cores, {DateTime.UtcNow:u}");
Console.WriteLine($"netctl process start (--version): {startup.TotalMilliseconds:F0} ms");
Console.WriteLine();
Console.WriteLine("| round | API client s | netctl apply s | ratio | netctl re-apply (unchanged) s | netctl --dry-run=server s |");
Console.WriteLine("|---|---|---|---|---|---|");
for (var round = 1; round <= rounds; round++)
{
    var apiNs = $"api-{run}-{round}";
    var cliNs = $"cli-{run}-{round}";
    await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = apiNs } });
    await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = cliNs } });
    var apiObjects = Workload.Objects(apiNs, network, node, count);
    var file = Path.Combine(directory.FullName, $"round-{round}.yaml");
    File.WriteAllText(file, Workload.Yaml(Workload.Objects(cliNs, network, node, count)));

    var api = Stopwatch.StartNew();
    await Parallel.ForEachAsync(apiObjects, new ParallelOptions { MaxDegreeOfParallelism = parallel }, async (o, _) => await CreateAsync(client, o));
    api.Stop();

    var apply = await TimeProcessAsync(netctl, ["--server", address, "apply", "-f", file, "--parallel", parallel.ToString()]);
    var reapply = await TimeProcessAsync(netctl, ["--server", address, "apply", "-f", file, "--parallel", parallel.ToString()]);
    var dryRun = await TimeProcessAsync(netctl, ["--server", address, "apply", "-f", file, "--dry-run=server"]);
    var created = (await client.Endpoints.ListAsync(new ListRequest { Namespace = cliNs, PageSize = 1000 })).Endpoints.Count;
    if (created != count * 8 / 10) throw new InvalidOperationException($"netctl created {created} endpoints, expected {count * 8 / 10}");
    Console.WriteLine($"| {round} | {api.Elapsed.TotalSeconds:F2} | {apply.TotalSeconds:F2} | {apply.TotalSeconds / api.Elapsed.TotalSeconds:F2} | {reapply.TotalSeconds:F2} | {dryRun.TotalSeconds:F2} |");
}
directory.Delete(recursive: true);

static Task CreateAsync(ControlPlaneClient client, IMessage o) => o switch
{
    Endpoint e => client.Endpoints.CreateAsync(e),
    Service s => client.Services.CreateAsync(s),
    NetworkPolicy p => client.NetworkPolicies.CreateAsync(p),
    _ => throw new ArgumentOutOfRangeException(nameof(o)),
};

static async Task<TimeSpan> TimeProcessAsync(string netctl, string[] arguments)
{
    var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
    info.ArgumentList.Add(netctl);
    foreach (var a in arguments) info.ArgumentList.Add(a);
    var clock = Stopwatch.StartNew();
    using var process = Process.Start(info)!;
    var output = process.StandardOutput.ReadToEndAsync();
    var error = process.StandardError.ReadToEndAsync();
    await process.WaitForExitAsync();
    clock.Stop();
    if (process.ExitCode != 0) throw new InvalidOperationException($"netctl {string.Join(' ', arguments)} exited {process.ExitCode}: {await error}");
    await output;
    return clock.Elapsed;
}
