using System.Diagnostics;
using System.Text.RegularExpressions;
using ControlPlane.Contracts.Client;

namespace ControlPlane.Silo.Tests;

/// <summary>A silo as a separate OS process, so a test can kill it with SIGKILL and start it again.</summary>
internal sealed partial class SiloProcess : IAsyncDisposable
{
    private readonly Process _process;
    private int _disposed;
    private readonly List<string> _output = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource Seen)> _waiters = [];

    private SiloProcess(Process process, Uri address, ClientTls? tls)
    {
        _process = process;
        Address = address;
        Client = new ControlPlaneClient(address.ToString(), tls: tls);
    }

    public Uri Address { get; }

    public int ExitCode => _process.ExitCode;

    public ControlPlaneClient Client { get; }

    public static Task<SiloProcess> StartAsync(string dataDirectory, params string[] settings) => StartAsync(dataDirectory, null, settings);

    /// <summary>A silo with mutual TLS on when <paramref name="tls"/> is given (its <see cref="Client"/> is then the CA's admin).</summary>
    public static async Task<SiloProcess> StartAsync(string dataDirectory, ControlPlane.Tests.Shared.ClusterPki? tls, params string[] settings)
    {
        if (tls is not null) settings = [.. tls.SiloSettings, .. settings];
        var dll = Path.Combine(AppContext.BaseDirectory, "ControlPlane.Silo.dll");
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in (string[])[dll, "--Silo:Port=0", $"--Silo:DataDirectory={dataDirectory}", "--Dns:Enabled=false", .. settings]) info.ArgumentList.Add(arg);
        var process = Process.Start(info)!;
        var listening = new TaskCompletionSource<Uri>(TaskCreationOptions.RunContinuationsAsynchronously);
        var lines = new List<string>();
        SiloProcess? started = null;
        process.OutputDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (lines) lines.Add(e.Data);
            started?.Add(e.Data);
            if (ListeningLine().Match(e.Data) is { Success: true } match) listening.TrySetResult(new Uri(match.Groups[1].Value));
        };
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null) return;
            lock (lines) lines.Add(e.Data);
            started?.Add(e.Data);
        };
        process.Exited += (_, _) =>
        {
            // Exited can come before the last lines were read: WaitForExit() waits for the end of both streams.
            process.WaitForExit();
            lock (lines) listening.TrySetException(new InvalidOperationException("the silo exited:\n" + string.Join("\n", lines)));
        };
        process.EnableRaisingEvents = true;
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        var address = await listening.Task.WaitAsync(TimeSpan.FromSeconds(30));
        var silo = new SiloProcess(process, address, tls?.Client("admin", "admin"));
        lock (lines)
        {
            silo._output.AddRange(lines);
            started = silo;
        }
        return silo;
    }

    private void Add(string line)
    {
        lock (_output)
        {
            _output.Add(line);
            _waiters.RemoveAll(w => w.Match(line) && w.Seen.TrySetResult());
        }
    }

    /// <summary>Waits until the silo has written a line that <paramref name="match"/> accepts (one written before counts).</summary>
    public Task WaitForLineAsync(Func<string, bool> match, TimeSpan timeout)
    {
        var seen = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_output)
        {
            if (_output.Any(match)) return Task.CompletedTask;
            _waiters.Add((match, seen));
        }
        return seen.Task.WaitAsync(timeout);
    }

    /// <summary>SIGTERM, then waits for the process to exit; returns what it wrote.</summary>
    public async Task<IReadOnlyList<string>> TerminateAsync()
    {
        Signal(_process.Id, 15);
        await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
        lock (_output) return [.. _output];
    }

    /// <summary>Sends a signal to a process (kill(2)).</summary>
    [System.Runtime.InteropServices.DllImport("libc", EntryPoint = "kill", SetLastError = true)]
    public static extern int Signal(int pid, int signal);

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        _process.Kill();
        _process.WaitForExit();
    }

    public async ValueTask DisposeAsync()
    {
        // Idempotent: a test's finally may dispose a silo it already disposed before a restart
        // that failed, and must then report that failure, not this one.
        if (Interlocked.Exchange(ref _disposed, 1) == 1) return;
        Client.Dispose();
        if (!_process.HasExited)
        {
            _process.Kill();
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }

    [GeneratedRegex(@"Now listening on: (https?://127\.0\.0\.1:\d+)")]
    private static partial Regex ListeningLine();
}
