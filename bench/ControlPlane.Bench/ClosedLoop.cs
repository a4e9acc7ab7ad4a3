using System.Diagnostics;

namespace ControlPlane.Bench;

/// <summary>
/// N callers each issue one call after another for a fixed time. A warm-up run of the same load
/// comes first (WARMUP_SECONDS, default 5): tiered compilation keeps recompiling hot code for
/// several seconds, and the steady state is what a long-running server is judged on.
/// </summary>
internal static class ClosedLoop
{
    /// <summary>What one run measured: calls that succeeded, calls that failed, seconds, sorted latencies (ms).</summary>
    public sealed record Result(long Done, long Failed, double Seconds, double[] Latencies)
    {
        public double Rate => Done / Seconds;

        public double Percentile(double p) => ClosedLoop.Percentile(Latencies, p);
    }

    /// <summary>Warms up, then measures. <paramref name="call"/> gets a run label ("w" or "m"), the caller and the call's sequence number.</summary>
    public static async Task<Result> RunAsync(int callers, TimeSpan duration, Func<string, int, int, Task> call)
    {
        var warmup = TimeSpan.FromSeconds(double.Parse(Environment.GetEnvironmentVariable("WARMUP_SECONDS") ?? "5"));
        await OnceAsync("w", callers, warmup, call);
        return await OnceAsync("m", callers, duration, call);
    }

    private static async Task<Result> OnceAsync(string label, int callers, TimeSpan duration, Func<string, int, int, Task> call)
    {
        long done = 0, failed = 0;
        var latencies = new List<double>[callers];
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, callers).Select(async caller =>
        {
            var mine = latencies[caller] = new List<double>(100_000);
            for (var i = 0; clock.Elapsed < duration; i++)
            {
                var start = Stopwatch.GetTimestamp();
                try
                {
                    await call(label, caller, i);
                    Interlocked.Increment(ref done);
                    mine.Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds);
                }
                catch (Exception e)
                {
                    if (Interlocked.Increment(ref failed) < 5) Console.Error.WriteLine(e.Message);
                }
            }
        }));
        var seconds = clock.Elapsed.TotalSeconds;
        return new Result(done, failed, seconds, [.. latencies.SelectMany(l => l).Order()]);
    }

    public static double Percentile(double[] sorted, double p) => sorted.Length == 0 ? double.NaN : sorted[Math.Min(sorted.Length - 1, (int)(p * sorted.Length))];
}
