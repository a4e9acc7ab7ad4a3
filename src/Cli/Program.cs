using ControlPlane.Cli;
using ControlPlane.Cli.Output;
using ControlPlane.Contracts.Hosting;

// With OTEL_EXPORTER_OTLP_ENDPOINT set, each run is one trace (NetctlApp's client span, which the
// silo continues: every call carries its traceparent); disposing the provider flushes it.
OpenTelemetry.Trace.TracerProvider? tracing;
try
{
    tracing = Telemetry.StartTracing(Telemetry.CliService);
}
catch (InvalidConfigurationException e)
{
    // A bad OTEL_* variable: one line naming it, exit 1 (a bad setting outside the command line).
    Console.Error.WriteLine("netctl: " + e.Message.Replace("Invalid configuration:\n  ", "", StringComparison.Ordinal));
    return 1;
}
using (tracing)
{
    return await NetctlApp.RunAsync(args, Terminal.System);
}
