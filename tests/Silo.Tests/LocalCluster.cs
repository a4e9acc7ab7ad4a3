using System.Diagnostics;
using ControlPlane.Contracts.Client;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// The multi-silo topology of docker-compose.yml as local processes, started and stopped by
/// scripts/cluster.sh (redis-server, a private PostgreSQL, silos, the DNS server, node agents).
/// The script records what it started in DIR/cluster.env; this class reads it.
/// </summary>
internal sealed class LocalCluster : IAsyncDisposable
{
    private static readonly string Script = Path.Combine(RepositoryPaths.Root, "scripts", "cluster.sh");

    private LocalCluster(string directory) => Directory = directory;

    public string Directory { get; }

    public static async Task<LocalCluster> StartAsync(int silos = 3, int agents = 0)
    {
        var cluster = new LocalCluster(Path.Combine(Path.GetTempPath(), "cpc-" + Guid.NewGuid().ToString("N")[..8]));
        try
        {
            await cluster.RunAsync("up", "--silos", silos.ToString(System.Globalization.CultureInfo.InvariantCulture), "--agents", agents.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        catch
        {
            await cluster.DisposeAsync();
            throw;
        }
        return cluster;
    }

    /// <summary>A value of DIR/cluster.env (the last one recorded: restarts record new process ids).</summary>
    public string Setting(string key) =>
        File.ReadLines(Path.Combine(Directory, "cluster.env")).Where(l => l.StartsWith(key + "=", StringComparison.Ordinal))
            .Select(l => l[(key.Length + 1)..].Trim('\'')).Last();

    public int SiloPid(int silo) => int.Parse(Setting($"SILO{silo}_PID"), System.Globalization.CultureInfo.InvariantCulture);

    public string SiloAddress(int silo) => $"http://127.0.0.1:{Setting($"SILO{silo}_PORT")}";

    /// <summary>Every silo's address, starting with <paramref name="first"/>: a client that prefers that silo and fails over to the others.</summary>
    public string Addresses(int first = 1)
    {
        var all = FailoverCallInvoker.Split(Setting("SILO_ADDRESSES"));
        return string.Join(',', all.Skip(first - 1).Concat(all.Take(first - 1)));
    }

    public string Postgres => Setting("POSTGRES");

    /// <summary>(Re)starts silo <paramref name="silo"/>; returns once it reports healthy.</summary>
    public Task StartSiloAsync(int silo) => RunAsync("silo", silo.ToString(System.Globalization.CultureInfo.InvariantCulture));

    public Task StopPostgresAsync() => RunAsync("postgres", "stop");

    public Task StartPostgresAsync() => RunAsync("postgres", "start");

    /// <summary>
    /// Stops (SIGSTOP) or continues (SIGCONT) the cluster's PostgreSQL and its backends: a database
    /// that hangs rather than goes away. The postmaster (POSTGRES_PID) runs under runuser, which, like
    /// su, stops itself when its child stops and continues the child when it is continued itself:
    /// a stop waits until runuser has stopped, and a continue starts with runuser, so that nothing
    /// is left stopped (a runuser continued before it saw its child stop would stop for good).
    /// </summary>
    public async Task SignalPostgresAsync(bool stop)
    {
        var postmaster = Setting("POSTGRES_PID");
        var runuser = ControlPlane.Tests.Shared.Shell.Must("ps", "-o", "ppid=", "-p", postmaster).Trim();
        var backends = ControlPlane.Tests.Shared.Shell.Run("pgrep", "-P", postmaster).Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        if (stop)
        {
            ControlPlane.Tests.Shared.Shell.Must(["kill", "-STOP", postmaster, .. backends]);
            using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            while (State(runuser) != 'T') await Task.Delay(20, deadline.Token);
        }
        else
        {
            ControlPlane.Tests.Shared.Shell.Must(["kill", "-CONT", runuser, postmaster, .. backends]);
        }
    }

    /// <summary>A process's state letter (R, S, T, Z, …) from /proc, or '?' when it is gone.</summary>
    private static char State(string pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[stat.LastIndexOf(')') + 2];
        }
        catch (IOException)
        {
            return '?';
        }
    }

    /// <summary>Runs SQL against the cluster's database (psql, unaligned, tuples only).</summary>
    public async Task<string[]> QueryAsync(string sql)
    {
        var (code, output) = await ExecAsync("psql", "-h", "127.0.0.1", "-p", Setting("POSTGRES_PORT"), "-U", "postgres", "-d", "postgres", "-AtXqc", sql);
        if (code != 0) throw new InvalidOperationException($"psql failed: {output}");
        return output.Split('\n', StringSplitOptions.RemoveEmptyEntries);
    }

    /// <summary>
    /// Silo <paramref name="silo"/>'s status in the membership table (Redis): the latest entry
    /// for its silo port, as Orleans' <c>SiloStatus</c> name ("Active", "Dead", ...), or null.
    /// </summary>
    public async Task<string?> MembershipStatusAsync(int silo)
    {
        var (code, output) = await ExecAsync("redis-cli", "-p", Setting("REDIS_PORT"), "--raw", "hgetall", "controlplane/members/controlplane");
        if (code != 0) throw new InvalidOperationException($"redis-cli failed: {output}");
        var port = ":" + Setting($"SILO{silo}_CLUSTER_PORT") + "@";
        var entries = output.Split('\n').Where(l => l.StartsWith('{') && l.Contains(port, StringComparison.Ordinal))
            .Select(l => System.Text.Json.JsonDocument.Parse(l).RootElement)
            .OrderBy(e => e.GetProperty("StartTime").GetDateTimeOffset()).ToList();
        return entries.Count == 0 ? null : ((Orleans.Runtime.SiloStatus)entries[^1].GetProperty("Status").GetInt32()).ToString();
    }

    /// <summary>Runs a redis-cli command against the cluster's membership Redis; returns its output.</summary>
    public async Task<string> RedisAsync(params string[] command)
    {
        var (code, output) = await ExecAsync("redis-cli", ["-p", Setting("REDIS_PORT"), .. command]);
        if (code != 0) throw new InvalidOperationException($"redis-cli failed: {output}");
        return output;
    }

    /// <summary>Whether silo <paramref name="silo"/>'s log has a line containing <paramref name="text"/>.</summary>
    public bool SiloLogged(int silo, string text) =>
        System.IO.Directory.EnumerateFiles(Directory, $"silo-{silo}.log").Any(f => File.ReadLines(f).Any(l => l.Contains(text, StringComparison.Ordinal)));

    public static bool IsAlive(int pid) => SiloProcess.Signal(pid, 0) == 0 && !IsZombie(pid);

    private static bool IsZombie(int pid)
    {
        try
        {
            var stat = File.ReadAllText($"/proc/{pid}/stat");
            return stat[(stat.LastIndexOf(')') + 2)..].StartsWith('Z');
        }
        catch (IOException)
        {
            return false;
        }
    }

    private async Task RunAsync(params string[] args)
    {
        var (code, output) = await ExecAsync(Script, [args[0], Directory, .. args[1..]]);
        if (code != 0) throw new InvalidOperationException($"cluster.sh {args[0]} failed ({code}):\n{output}\n{Logs()}");
    }

    /// <summary>The tail of every process's log, for failure messages.</summary>
    public string Logs() => string.Join('\n', System.IO.Directory.Exists(Directory)
        ? System.IO.Directory.EnumerateFiles(Directory, "*.log").Order().Select(f => $"== {Path.GetFileName(f)}\n{string.Join('\n', File.ReadLines(f).TakeLast(15).Select(l => l.Length > 400 ? l[..400] + "…" : l))}")
        : []);

    private static async Task<(int Code, string Output)> ExecAsync(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, await stdout + await stderr);
    }

    public async ValueTask DisposeAsync()
    {
        if (File.Exists(Path.Combine(Directory, "cluster.env")))
        {
            await ExecAsync(Script, "down", Directory);
        }
        System.IO.Directory.Delete(Directory, recursive: true);
    }
}
