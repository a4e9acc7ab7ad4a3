using ControlPlane.Cli;
using ControlPlane.Cli.Output;
using ControlPlane.Contracts.Hosting;

// With OTEL_EXPORTER_OTLP_ENDPOINT set, each run is one trace (NetctlApp's client span, which the
// silo continues: every call carries its traceparent); disposing the provider flushes it.
using (Telemetry.StartTracing(Telemetry.CliService))
{
    return await NetctlApp.RunAsync(args, Terminal.System);
}
