using System.Diagnostics;
using System.Text;
using System.Threading.Channels;

namespace ControlPlane.Cli.Tests;

/// <summary>The real netctl binary (dotnet netctl.dll) as a process, isolated from the user's configuration.</summary>
internal static class Netctl
{
    public sealed record Result(int ExitCode, string Output, string Error)
    {
        public string[] OutputLines => Output.Split('\n', StringSplitOptions.RemoveEmptyEntries);

        /// <summary>The "error: …" lines of standard error.</summary>
        public string[] Errors => Error.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => l.StartsWith("error: ", StringComparison.Ordinal)).ToArray();

        public override string ToString() => $"exit {ExitCode}\n--- stdout\n{Output}--- stderr\n{Error}";
    }

    /// <summary>Runs netctl to completion (at most a minute) and returns its exit code and output.</summary>
    public static async Task<Result> RunAsync(string[] args, string? stdin = null, IDictionary<string, string>? environment = null)
    {
        using var process = Start(args, environment);
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        if (stdin is not null) await process.StandardInput.WriteAsync(stdin);
        process.StandardInput.Close();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        return new Result(process.ExitCode, await output, await error);
    }

    /// <summary>Another program (e.g. script(1) around netctl), to completion.</summary>
    public static async Task<Result> RunProgramAsync(string program, string[] args)
    {
        var info = new ProcessStartInfo(program) { RedirectStandardInput = true, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        info.Environment["HOME"] = EmptyHome;
        info.Environment["TERM"] = "xterm-256color";
        using var process = Process.Start(info)!;
        process.StandardInput.Close();
        var output = process.StandardOutput.ReadToEndAsync();
        var error = process.StandardError.ReadToEndAsync();
        try
        {
            await process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(60));
        }
        finally
        {
            if (!process.HasExited) process.Kill(entireProcessTree: true);
        }
        return new Result(process.ExitCode, await output, await error);
    }

    /// <summary>netctl against one silo.</summary>
    public static Task<Result> RunAsync(Silo silo, params string[] args) => RunAsync(["--server", silo.Address, .. args]);

    /// <summary>A long-running netctl (watch) whose standard output is read line by line; killed when disposed.</summary>
    public static Streaming Stream(string[] args) => new(Start(args, null));

    private static Process Start(string[] args, IDictionary<string, string>? environment)
    {
        var info = new ProcessStartInfo("dotnet")
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardOutputEncoding = Encoding.UTF8,
        };
        info.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "netctl.dll"));
        foreach (var arg in args) info.ArgumentList.Add(arg);
        // No configuration of the machine's user leaks in: an empty home, no NETCTL_ variables.
        foreach (var key in info.Environment.Keys.Where(k => k.StartsWith("NETCTL_", StringComparison.Ordinal)).ToList()) info.Environment.Remove(key);
        info.Environment["HOME"] = EmptyHome;
        info.Environment["XDG_CONFIG_HOME"] = Path.Combine(EmptyHome, ".config");
        foreach (var (key, value) in environment ?? new Dictionary<string, string>()) info.Environment[key] = value;
        return Process.Start(info)!;
    }

    private static string EmptyHome { get; } = CreateHome();

    private static string CreateHome()
    {
        var home = Directory.CreateTempSubdirectory("cliw-home-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try
            {
                Directory.Delete(home, recursive: true);
            }
            catch (IOException)
            {
            }
        };
        return home;
    }

    public sealed class Streaming : IDisposable
    {
        private readonly Process _process;
        private readonly Channel<string> _lines = Channel.CreateUnbounded<string>();
        private readonly StringBuilder _error = new();
        private readonly Task _errorRead;

        public Streaming(Process process)
        {
            _process = process;
            process.StandardInput.Close();
            _ = Task.Run(async () =>
            {
                while (await process.StandardOutput.ReadLineAsync() is { } line) _lines.Writer.TryWrite(line);
                _lines.Writer.TryComplete();
            });
            _errorRead = Task.Run(async () =>
            {
                var text = await process.StandardError.ReadToEndAsync();
                lock (_error) _error.Append(text);
            });
        }

        /// <summary>The next line of standard output; fails after <paramref name="timeout"/> (default 30 s) or when the process ended.</summary>
        public async Task<string> ReadLineAsync(TimeSpan? timeout = null)
        {
            using var cancel = new CancellationTokenSource(timeout ?? TimeSpan.FromSeconds(30));
            try
            {
                return await _lines.Reader.ReadAsync(cancel.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ChannelClosedException)
            {
                string error;
                lock (_error) error = _error.ToString();
                throw new TimeoutException($"no line from netctl ({(e is ChannelClosedException ? "it exited" : "timed out")}); stderr:\n{error}", e);
            }
        }

        /// <summary>Sends <paramref name="signal"/> (as Ctrl+C or a service manager would) and returns the exit code.</summary>
        public async Task<int> SignalAsync(string signal)
        {
            using var kill = Process.Start("kill", ["-" + signal, _process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)])!;
            await kill.WaitForExitAsync();
            return await ExitAsync();
        }

        /// <summary>Waits (up to 30 s) for netctl to end; its exit code, with <see cref="Error"/> complete.</summary>
        public async Task<int> ExitAsync()
        {
            await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            // Standard error is read to its end once the process is gone: wait for that, so Error is complete.
            await _errorRead.WaitAsync(TimeSpan.FromSeconds(30));
            return _process.ExitCode;
        }

        /// <summary>The lines of standard output not read yet (once the process has ended).</summary>
        public async Task<List<string>> RestAsync()
        {
            var rest = new List<string>();
            await foreach (var line in _lines.Reader.ReadAllAsync()) rest.Add(line);
            return rest;
        }

        /// <summary>Standard error so far.</summary>
        public string Error
        {
            get { lock (_error) return _error.ToString(); }
        }

        /// <summary>Lines until one satisfies <paramref name="match"/>; returns that line.</summary>
        public async Task<string> ReadUntilAsync(Func<string, bool> match)
        {
            while (true)
            {
                var line = await ReadLineAsync();
                if (match(line)) return line;
            }
        }

        public void Dispose()
        {
            if (!_process.HasExited) _process.Kill(entireProcessTree: true);
            _process.WaitForExit();
            _process.Dispose();
        }
    }
}
