using System.Runtime.InteropServices;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Ends the silo's process at once, for the cases where an orderly shutdown cannot finish or
/// must not run. Exit handlers are skipped (the host's would wait for that very shutdown);
/// nothing is lost by it, since every acknowledged write was committed before it was
/// acknowledged. The reason goes to the log and, unbuffered, to standard error.
/// </summary>
public static class ProcessEnd
{
    /// <summary>How long the host waits for its services to stop (<c>HostOptions.ShutdownTimeout</c>).</summary>
    public static readonly TimeSpan ShutdownTimeout = TimeSpan.FromSeconds(10);

    /// <summary>
    /// The longest a stop may take. Orleans leaves the cluster by writing its status to the
    /// membership table, and with Redis unreachable it retries each of those writes for up to
    /// a minute, past the host's timeout: a silo told to stop then ran for two minutes more.
    /// Supervisors expect a stop within 30 s (Kubernetes' default grace period) and then kill.
    /// </summary>
    public static readonly TimeSpan StopLimit = TimeSpan.FromSeconds(20);

    /// <summary>Ends the process (exit code 1) if a stop is still running <see cref="StopLimit"/> after it began. The other silos then find this one gone as they find a killed one.</summary>
    public static void BoundStop(IHostApplicationLifetime lifetime, ILogger log) =>
        lifetime.ApplicationStopping.Register(() => new Thread(() =>
        {
            Thread.Sleep(StopLimit);
            Now(log, $"the stop did not finish within {StopLimit.TotalSeconds:F0} s (Orleans could not record its leaving in the membership table, or the store could not be closed): ending the process; every acknowledged write is committed", 1);
        })
        { IsBackground = true, Name = "stop limit" }.Start());

    public static void Now(ILogger log, string reason, int exitCode)
    {
        log.LogError("{Reason}", reason);
        Console.Out.Flush();
        Console.Error.WriteLine($"ControlPlane.Silo: {reason}");
        Console.Error.Flush();
        Exit(exitCode);
    }

    [DllImport("libc", EntryPoint = "_exit")]
    private static extern void Exit(int code);
}
