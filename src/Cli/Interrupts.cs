using System.Runtime.InteropServices;

namespace ControlPlane.Cli;

/// <summary>
/// Ctrl+C (SIGINT) and SIGTERM: the first cancels the running command (it stops cleanly: a watch
/// closes its stream), a second one ends the process at once. A command that a signal stopped
/// exits 130 or 143 (128 + the signal's number, what a shell reports for a process the signal
/// ended), so a script can tell an interrupted watch or wait from one that ended by itself.
/// netctl handles the signals itself rather than through System.CommandLine, whose handler
/// holds the signal until the command has finished, before anything else learns which it was.
/// </summary>
internal static class Interrupts
{
    private const int SigInt = 2;
    private const int SigTerm = 15;
    private static readonly CancellationTokenSource Cancelled = new();
    private static int _signal;
    private static PosixSignalRegistration? _interrupt;
    private static PosixSignalRegistration? _terminate;

    /// <summary>Cancelled by the first signal.</summary>
    public static CancellationToken Token => Cancelled.Token;

    public static void Handle()
    {
        _interrupt ??= PosixSignalRegistration.Create(PosixSignal.SIGINT, context => Stop(context, SigInt));
        _terminate ??= PosixSignalRegistration.Create(PosixSignal.SIGTERM, context => Stop(context, SigTerm));
    }

    private static void Stop(PosixSignalContext context, int signal)
    {
        if (Interlocked.CompareExchange(ref _signal, signal, 0) != 0) return;   // the second: the default action ends the process
        context.Cancel = true;
        Cancelled.Cancel();
    }

    /// <summary>130 or 143 when a signal cancelled the run, else <paramref name="otherwise"/>.</summary>
    public static int ExitCode(int otherwise) => Volatile.Read(ref _signal) is > 0 and var signal ? 128 + signal : otherwise;
}
