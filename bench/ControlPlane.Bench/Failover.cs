using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Bench;

/// <summary>
/// Failover time on a cluster that scripts/cluster.sh started: per round, SIGKILL one silo (in
/// turn) and time until every one of 30 probe objects (spread over the silos at random, so about
/// a third lived on the killed one) takes a write again through the surviving silos; then start
/// the silo again with the script and wait for it to serve.
/// </summary>
internal static class Failover
{
    private const int Probes = 30;

    public static async Task RunAsync(string addresses, string clusterDirectory, int rounds)
    {
        var silos = FailoverCallInvoker.Split(addresses);
        var run = Guid.NewGuid().ToString("N")[..6];
        var ns = $"failover-{run}";
        var times = new List<double>();
        using (var setup = new ControlPlaneClient(addresses))
        {
            await setup.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = ns } });
        }
        for (var round = 0; round < rounds; round++)
        {
            var victim = round % silos.Length + 1;
            // A client of the survivors only, each probe through one of them.
            var survivors = string.Join(',', silos.Where((_, i) => i + 1 != victim));
            using var client = new ControlPlaneClient(survivors);
            var probes = Enumerable.Range(0, Probes).Select(i => $"{ns}-{round}-{i}").ToArray();
            await Task.WhenAll(probes.Select(name => client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = name } })));

            var pid = int.Parse(Setting(clusterDirectory, $"SILO{victim}_PID"));
            var clock = Stopwatch.StartNew();
            Kill(pid, 9);
            var moved = await Task.WhenAll(probes.Select(name => FirstWriteAsync(client, name, clock)));
            times.Add(moved.Max());
            Console.WriteLine($"round {round + 1}: silo {victim} killed; every probe written again after {moved.Max():F0} ms");
            await RestartAsync(clusterDirectory, victim);
        }
        times.Sort();
        Console.WriteLine();
        Console.WriteLine("## Failover: SIGKILL → every moved object takes a write again");
        Console.WriteLine("| silos | rounds | median ms | max ms |");
        Console.WriteLine("|---|---|---|---|");
        Console.WriteLine($"| {silos.Length} | {rounds} | {times[times.Count / 2]:F0} | {times[^1]:F0} |");
    }

    private static async Task<double> FirstWriteAsync(ControlPlaneClient client, string name, Stopwatch clock)
    {
        while (true)
        {
            try
            {
                var current = await client.Namespaces.GetAsync("", name, Calls.Within(TimeSpan.FromSeconds(5)));
                current.Metadata.Labels["written"] = clock.ElapsedTicks.ToString(System.Globalization.CultureInfo.InvariantCulture);
                current.Metadata.Etag = "";
                await client.Namespaces.UpdateAsync(current, Calls.Within(TimeSpan.FromSeconds(5)));
                return clock.Elapsed.TotalMilliseconds;
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded && clock.Elapsed < TimeSpan.FromSeconds(60))
            {
            }
        }
    }

    private static string Setting(string directory, string key) =>
        File.ReadLines(Path.Combine(directory, "cluster.env")).Where(l => l.StartsWith(key + "=", StringComparison.Ordinal)).Select(l => l[(key.Length + 1)..].Trim('\'')).Last();

    private static async Task RestartAsync(string directory, int silo)
    {
        var script = Path.Combine(AppContext.BaseDirectory, "..", "..", "..", "..", "..", "scripts", "cluster.sh");
        using var process = Process.Start(new ProcessStartInfo(Path.GetFullPath(script), ["silo", directory, silo.ToString(System.Globalization.CultureInfo.InvariantCulture)]))!;
        await process.WaitForExitAsync();
        if (process.ExitCode != 0) throw new InvalidOperationException($"cluster.sh silo {silo} failed");
    }

    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill")]
    private static extern int Kill(int pid, int signal);
}
