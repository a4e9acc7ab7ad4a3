using System.Diagnostics;
using ControlPlane.Cli;
using ControlPlane.Cli.Output;
using ControlPlane.Contracts.Hosting;

// With OTEL_EXPORTER_OTLP_ENDPOINT set, each run is one trace: a client span named after the
// command, which the silo continues (traceparent on every call); disposing the provider flushes it.
using (Telemetry.StartTracing(Telemetry.CliService))
using (NetctlApp.Tracing.StartActivity("netctl " + string.Join(' ', args.TakeWhile(a => !a.StartsWith('-')).Take(2)), ActivityKind.Client))
{
    return await NetctlApp.RunAsync(args, Terminal.System);
}
