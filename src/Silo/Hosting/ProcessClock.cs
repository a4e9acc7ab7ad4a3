using System.Diagnostics;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// The clock of Orleans' membership components: the system clock, with timestamps counted from
/// this process's start instead of the machine's. Orleans' watchdog starts its runtime check
/// thread before it stamps the start of its component checks; when that thread looks first, it
/// reads a stamp of zero, and with the machine's timestamps it warned at every busy start that the
/// checks "have not completed" for the machine's uptime. Counted from the process's start, that
/// first look sees the seconds since start, under its threshold. Orleans only ever subtracts
/// timestamps of one clock, so where they start changes nothing else.
/// </summary>
internal sealed class ProcessClock : TimeProvider
{
    private static readonly long Origin = Stopwatch.GetTimestamp();

    public static ProcessClock Instance { get; } = new();

    private ProcessClock()
    {
    }

    // Never zero, which some code reads as "not yet".
    public override long GetTimestamp() => Stopwatch.GetTimestamp() - Origin + 1;
}
