using System.Runtime.InteropServices;
using ControlPlane.Convergence.Bench;

// Convergence benchmarks (bench/convergence.sh runs both and prints the tables).
//   hosts [changes]: three real hosts (the NodeAgent.Tests bed: in-process silo, agent processes,
//       hosts as network namespaces); policy changes timed until WaitProgrammed returns and, as
//       the reference, until a probe between pods first shows the change.
//   simulated <silo dll> [nodes] [changes]: simulated node agents (a watch, programmed reports,
//       heartbeats each) against a separate Release silo process; its CPU and memory from /proc.
using var stop = new CancellationTokenSource();
// Ctrl-C or SIGTERM ends the run through its finally blocks, so the namespaces and processes go too.
using var interrupt = PosixSignalRegistration.Create(PosixSignal.SIGINT, Interrupted);
using var terminate = PosixSignalRegistration.Create(PosixSignal.SIGTERM, Interrupted);
void Interrupted(PosixSignalContext context)
{
    context.Cancel = true;
    stop.Cancel();
}

var mode = args.Length > 0 ? args[0] : "";
try
{
    switch (mode)
    {
        case "hosts":
            await Hosts.RunAsync(args.Length > 1 ? int.Parse(args[1]) : 200, stop.Token);
            return 0;
        case "simulated" when args.Length > 1:
            await Simulated.RunAsync(args[1], args.Length > 2 ? int.Parse(args[2]) : 1000, args.Length > 3 ? int.Parse(args[3]) : 200, stop.Token);
            return 0;
        default:
            Console.Error.WriteLine("usage: hosts [changes] | simulated <ControlPlane.Silo.dll> [nodes] [changes]");
            return 2;
    }
}
catch (OperationCanceledException) when (stop.IsCancellationRequested)
{
    Console.Error.WriteLine("interrupted");
    return 130;
}
