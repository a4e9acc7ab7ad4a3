using System.Diagnostics;
using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Tests.Shared;

/// <summary>
/// A private PostgreSQL 15 cluster for the tests of one process (Debian's binaries, run as the
/// postgres user, which initdb and postgres require): its own directory, a free loopback port,
/// trust authentication, no fsync. Started on first use, stopped when the process exits. Each
/// test takes a database of its own.
/// </summary>
public sealed class PostgresServer
{
    private const string Binaries = "/usr/lib/postgresql/15/bin";
    private static readonly Lazy<PostgresServer> Shared = new(Start);
    private readonly Process _process;
    private readonly string _directory;

    private PostgresServer(Process process, string directory, int port)
    {
        _process = process;
        _directory = directory;
        Port = port;
    }

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
        Directory.CreateDirectory(directory);
        Shell.Run("chown", "postgres", directory);
        var (code, output) = Shell.Run("runuser", "-u", "postgres", "--", $"{Binaries}/initdb", "-D", $"{directory}/data", "-A", "trust", "-U", "postgres", "--no-sync");
        if (code != 0) throw new InvalidOperationException($"initdb failed: {output}");
        var port = Ports.Free();
        var info = new ProcessStartInfo("runuser") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["-u", "postgres", "--", $"{Binaries}/postgres", "-D", $"{directory}/data", "-p", port.ToString(System.Globalization.CultureInfo.InvariantCulture),
                     "-k", directory, "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "max_connections=300"])
            info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        var ready = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Watch(string? line)
        {
            if (line?.Contains("ready to accept connections", StringComparison.Ordinal) == true) ready.TrySetResult();
        }
        process.OutputDataReceived += (_, e) => Watch(e.Data);
        process.ErrorDataReceived += (_, e) => Watch(e.Data);
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        ready.Task.Wait(TimeSpan.FromSeconds(30));
        var server = new PostgresServer(process, directory, port);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => server.Stop();
        return server;
    }

    private void Stop()
    {
        // runuser waits for postgres: SIGTERM to postgres itself (its pid is in postmaster.pid) is a fast shutdown.
        var pidFile = Path.Combine(_directory, "data", "postmaster.pid");
        if (File.Exists(pidFile) && int.TryParse(File.ReadLines(pidFile).First(), out var pid))
        {
            Shell.Run("kill", "-INT", pid.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        _process.WaitForExit(10_000);
        Directory.Delete(_directory, recursive: true);
    }
}
