using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Tests.Shared;

/// <summary>
/// A private PostgreSQL 15 cluster for the tests of one process (Debian's binaries, run as the
/// postgres user, which initdb and postgres require): its own directory, a free loopback port,
/// trust authentication, no fsync. Started on first use; stopped and removed once the process has exited. Each
/// test takes a database of its own.
/// </summary>
public sealed class PostgresServer
{
    private const string Binaries = "/usr/lib/postgresql/15/bin";
    private static readonly Lazy<PostgresServer> Shared = new(Start);
    private PostgresServer(string directory, int port)
    {
        Directory = directory;
        Port = port;
    }

    /// <summary>The cluster's directory, removed with it once this process has ended.</summary>
    public string Directory { get; }

    public static PostgresServer Instance => Shared.Value;

    public int Port { get; }

    /// <summary>A connection string to a new, empty database.</summary>
    public string CreateDatabase()
    {
        var name = "t" + Guid.NewGuid().ToString("N")[..12];
        Psql($"CREATE DATABASE {name}");
        return ConnectionString(name);
    }

    public string ConnectionString(string database) => $"Host=127.0.0.1;Port={Port};Username=postgres;Database={database};Timeout=5;Command Timeout=30";

    /// <summary>Runs SQL as the superuser against the postgres database.</summary>
    public string Psql(string sql, string database = "postgres")
    {
        var (code, output) = Shell.Run("psql", "-h", "127.0.0.1", "-p", Port.ToString(System.Globalization.CultureInfo.InvariantCulture), "-U", "postgres", "-d", database, "-Atc", sql);
        if (code != 0) throw new InvalidOperationException($"psql failed: {output}");
        return output.Trim();
    }

    private static PostgresServer Start()
    {
        var directory = Path.Combine(Path.GetTempPath(), "cp-pg-" + Guid.NewGuid().ToString("N")[..8]);
        System.IO.Directory.CreateDirectory(directory);
        Shell.Run("chown", "postgres", directory);
        var (code, output) = Shell.Run("runuser", "-u", "postgres", "--", $"{Binaries}/initdb", "-D", $"{directory}/data", "-A", "trust", "-U", "postgres", "--no-sync");
        if (code != 0) throw new InvalidOperationException($"initdb failed: {output}");
        var port = Ports.Free().ToString(System.Globalization.CultureInfo.InvariantCulture);
        // A watchdog in a session of its own runs postgres and outlives this process: once the
        // process is gone (however it ended: the test host is killed soon after its exit handlers
        // start) it stops postgres (SIGINT, a fast shutdown), waits for it and removes the directory.
        var script = $"""
            runuser -u postgres -- {Binaries}/postgres -D "$1/data" -p "$2" -k "$1" -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=300 > "$1/log" 2>&1 &
            pg=$!
            while kill -0 "$3" 2>/dev/null && kill -0 $pg 2>/dev/null; do sleep 0.5; done
            [ -f "$1/data/postmaster.pid" ] && kill -INT "$(head -1 "$1/data/postmaster.pid")" 2>/dev/null
            wait $pg
            rm -rf "$1"
            """;
        var info = new ProcessStartInfo("setsid") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["bash", "-c", script, "postgres-watchdog", directory, port, Environment.ProcessId.ToString(System.Globalization.CultureInfo.InvariantCulture)])
            info.ArgumentList.Add(arg);
        using var watchdog = Process.Start(info)!;
        var log = Path.Combine(directory, "log");
        var deadline = Stopwatch.StartNew();
        while (!(File.Exists(log) && File.ReadAllText(log).Contains("ready to accept connections", StringComparison.Ordinal)))
        {
            if (deadline.Elapsed > TimeSpan.FromSeconds(30)) throw new InvalidOperationException($"postgres did not start: {(File.Exists(log) ? File.ReadAllText(log) : "no log")}");
            Thread.Sleep(50);
        }
        return new PostgresServer(directory, int.Parse(port, System.Globalization.CultureInfo.InvariantCulture));
    }
}
