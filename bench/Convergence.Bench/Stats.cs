using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Convergence.Bench;

/// <summary>Percentiles and table cells.</summary>
internal static class Stats
{
    /// <summary>The nearest-rank percentile of <paramref name="values"/> (NaN when empty).</summary>
    public static double At(IEnumerable<double> values, double q)
    {
        var sorted = values.Where(v => !double.IsNaN(v)).Order().ToArray();
        if (sorted.Length == 0) return double.NaN;
        return sorted[Math.Clamp((int)Math.Ceiling(q * sorted.Length) - 1, 0, sorted.Length - 1)];
    }

    public static string Ms(double value) => double.IsNaN(value) ? "–" : value.ToString(value < 10 ? "F2" : "F1", CultureInfo.InvariantCulture);

    /// <summary>"p50 | p90 | p99 | max | n" of the values.</summary>
    public static string Cells(IReadOnlyCollection<double> values) =>
        $"{Ms(At(values, 0.5))} | {Ms(At(values, 0.9))} | {Ms(At(values, 0.99))} | {Ms(At(values, 1))} | {values.Count(v => !double.IsNaN(v))}";

    public static double Since(long start) => Stopwatch.GetElapsedTime(start).TotalMilliseconds;

    public static double Between(long start, long end) => (end - start) * 1000.0 / Stopwatch.Frequency;

    /// <summary>Waits until Convergence/Status shows <paramref name="count"/> counted nodes; returns the last status.</summary>
    public static async Task<ConvergenceStatusResponse> WaitCountedAsync(ControlPlaneClient client, int count, TimeSpan within, CancellationToken stop)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            ConvergenceStatusResponse status;
            try
            {
                status = await client.ConvergenceStatusAsync(Calls.Within(TimeSpan.FromSeconds(10), stop));
            }
            catch (Grpc.Core.RpcException e) when (e.StatusCode == Grpc.Core.StatusCode.Unavailable && clock.Elapsed < within)
            {
                // A silo swamped by agents connecting at once can miss a keepalive ping: ask again.
                Console.Error.WriteLine($"Convergence/Status failed after {clock.Elapsed.TotalSeconds:F1} s (asking again): {e.Status.Detail}");
                continue;
            }
            var counted = status.Nodes.Count(n => n.Counted);
            if (counted >= count) return status;
            if (clock.Elapsed > within)
            {
                throw new TimeoutException($"{counted} of {count} nodes counted after {within.TotalSeconds:0} s; not counted: " +
                    string.Join(", ", status.Nodes.Where(n => !n.Counted).Take(10).Select(n => $"{n.Name} (ready {n.Ready}, last report {n.SecondsSinceReport:F1} s ago)")));
            }
            await Task.Delay(500, stop);
        }
    }
}

/// <summary>CPU seconds (user + system) and resident memory of a process, from /proc.</summary>
internal sealed class ProcessMeter(int pid)
{
    private static readonly double TicksPerSecond = sysconf(2 /* _SC_CLK_TCK */);

    public int Pid => pid;

    public double CpuSeconds()
    {
        var stat = File.ReadAllText($"/proc/{pid}/stat");
        // After "(comm)": state is field 3, utime field 14 and stime field 15.
        var fields = stat[(stat.LastIndexOf(')') + 2)..].Split(' ');
        return (long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture)) / TicksPerSecond;
    }

    /// <summary>VmRSS in MiB.</summary>
    public double RssMb()
    {
        foreach (var line in File.ReadLines($"/proc/{pid}/status"))
        {
            if (line.StartsWith("VmRSS:", StringComparison.Ordinal))
            {
                return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) / 1024.0;
            }
        }
        return double.NaN;
    }

    [DllImport("libc")]
    private static extern long sysconf(int name);
}

/// <summary>One measured window: wall time, and CPU of the silo and of this process.</summary>
internal sealed class Window
{
    private readonly ProcessMeter _silo;
    private readonly long _start = Stopwatch.GetTimestamp();
    private readonly double _siloCpu;
    private readonly TimeSpan _benchCpu = Process.GetCurrentProcess().TotalProcessorTime;

    public Window(ProcessMeter silo)
    {
        _silo = silo;
        _siloCpu = silo.CpuSeconds();
    }

    /// <summary>Silo CPU seconds of the window (set by <see cref="End"/>).</summary>
    public double SiloCpu { get; private set; }

    /// <summary>A table row: phase | seconds | silo CPU s | silo CPU % of a core | silo RSS MiB | this process's CPU s | the machine's 1-minute load average.</summary>
    public string End(string phase)
    {
        var seconds = Stopwatch.GetElapsedTime(_start).TotalSeconds;
        var cpu = SiloCpu = _silo.CpuSeconds() - _siloCpu;
        var bench = (Process.GetCurrentProcess().TotalProcessorTime - _benchCpu).TotalSeconds;
        var load = File.ReadAllText("/proc/loadavg").Split(' ')[0];
        return string.Create(CultureInfo.InvariantCulture, $"| {phase} | {seconds:F1} | {cpu:F2} | {100 * cpu / seconds:F1} | {_silo.RssMb():F0} | {bench:F2} | {load} |");
    }
}
