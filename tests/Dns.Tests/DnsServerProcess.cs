using System.Diagnostics;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// The DNS server program (ControlPlane.DnsServer) as a real process, optionally inside a network
/// namespace, with its log lines collected so a test can await one.
/// </summary>
internal sealed class DnsServerProcess : IAsyncDisposable
{
    private readonly Process _process;
    private readonly List<string> _lines = [];
    private readonly List<(Func<string, bool> Match, TaskCompletionSource<string> Done)> _waiters = [];

    private DnsServerProcess(Process process) => _process = process;

    /// <param name="netns">A network namespace to run in (through ip netns exec), or null.</param>
    public static DnsServerProcess Start(string? netns, params string[] settings)
    {
        var dll = Path.Combine(AppContext.BaseDirectory, "ControlPlane.DnsServer.dll");
        var info = new ProcessStartInfo(netns is null ? "dotnet" : "ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        string[] command = netns is null ? [dll, .. settings] : ["netns", "exec", netns, "dotnet", dll, .. settings];
        foreach (var arg in command) info.ArgumentList.Add(arg);
        var server = new DnsServerProcess(Process.Start(info)!);
        server._process.OutputDataReceived += (_, e) => server.Received(e.Data);
        server._process.ErrorDataReceived += (_, e) => server.Received(e.Data);
        server._process.BeginOutputReadLine();
        server._process.BeginErrorReadLine();
        return server;
    }

    public string Log
    {
        get { lock (_lines) return string.Join('\n', _lines); }
    }

    private void Received(string? line)
    {
        if (line is null) return;
        lock (_lines)
        {
            _lines.Add(line);
            foreach (var waiter in _waiters.Where(w => w.Match(line)).ToList())
            {
                _waiters.Remove(waiter);
                waiter.Done.TrySetResult(line);
            }
        }
    }

    /// <summary>Waits for a log line (already logged or still to come) that contains <paramref name="text"/>.</summary>
    public async Task<string> WaitForLineAsync(string text, TimeSpan timeout)
    {
        var done = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        bool Match(string line) => line.Contains(text, StringComparison.Ordinal);
        lock (_lines)
        {
            if (_lines.FirstOrDefault(Match) is { } seen) return seen;
            _waiters.Add((Match, done));
        }
        if (await Task.WhenAny(done.Task, Task.Delay(timeout)) != done.Task)
        {
            throw new TimeoutException($"the DNS server did not log '{text}' within {timeout.TotalSeconds} s:\n{Log}");
        }
        return await done.Task;
    }

    /// <summary>Lines logged so far that contain <paramref name="text"/>.</summary>
    public int Count(string text)
    {
        lock (_lines) return _lines.Count(l => l.Contains(text, StringComparison.Ordinal));
    }

    public async ValueTask DisposeAsync()
    {
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
            await _process.WaitForExitAsync();
        }
        _process.Dispose();
    }
}
