using System.Diagnostics;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry;
using OpenTelemetry.Exporter;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using OpenTelemetry.Trace;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// OpenTelemetry as every program of the project sets it up (OpenTelemetry.Extensions.Hosting):
/// the meters ControlPlane.* and System.Runtime, the activity sources ControlPlane.*, OTLP export
/// when the standard OTEL_EXPORTER_OTLP_* variables name an endpoint (the exporter reads the rest of
/// OTEL_* itself, except the per-signal OTEL_EXPORTER_OTLP_{TRACES,METRICS}_* ones, which its
/// AddOtlpExporter ignores: <see cref="ForSignal"/> applies those). Prometheus text is each program's
/// own (ASP.NET Core's exporter: the silo on its ports, the agent and the DNS server on Metrics:Listen).
/// Without an OTLP endpoint no tracer provider is built, so no activity is ever created.
/// </summary>
public static class Telemetry
{
    public const string SiloService = "controlplane-silo";
    public const string AgentService = "controlplane-agent";
    public const string DnsService = "controlplane-dns";
    public const string CliService = "netctl";

    /// <summary>True when OTLP traces should be exported (OTEL_EXPORTER_OTLP_ENDPOINT or _TRACES_ENDPOINT set).</summary>
    public static bool TracesExported => IsSet("OTEL_EXPORTER_OTLP_ENDPOINT") || IsSet("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");

    /// <summary>True when OTLP metrics should be exported (OTEL_EXPORTER_OTLP_ENDPOINT or _METRICS_ENDPOINT set).</summary>
    public static bool MetricsExported => IsSet("OTEL_EXPORTER_OTLP_ENDPOINT") || IsSet("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT");

    /// <param name="services">The program's services.</param>
    /// <param name="serviceName">service.name of the resource (<see cref="SiloService"/>, ...).</param>
    /// <param name="metrics">More for the meter provider (Orleans' meter, the Prometheus exporter).</param>
    /// <param name="tracing">More for the tracer provider (the silo: Orleans' activity source).</param>
    /// <param name="resource">More resource attributes (the agent: its node's name, <c>controlplane.node</c>).</param>
    public static IServiceCollection AddControlPlaneTelemetry(this IServiceCollection services, string serviceName,
        Action<MeterProviderBuilder>? metrics = null, Action<TracerProviderBuilder>? tracing = null,
        IEnumerable<KeyValuePair<string, object>>? resource = null)
    {
        var sampler = TracesExported ? SamplerFromEnvironment() : null;
        var otel = services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService(serviceName, serviceVersion: ProgramInfo.Version).AddAttributes(resource ?? []))
            .WithMetrics(m =>
            {
                m.AddMeter("ControlPlane.*", "System.Runtime");
                metrics?.Invoke(m);
                if (MetricsExported) m.AddOtlpExporter(o => ForSignal(o, "METRICS"));
            });
        if (TracesExported || MetricsExported)
        {
            services.AddHostedService<TelemetryExportLog>();
        }
        if (TracesExported)
        {
            otel.WithTracing(t =>
            {
                t.AddSource("ControlPlane.*");
                tracing?.Invoke(t);
                t.SetSampler(sampler!);
                t.AddOtlpExporter(o => ForSignal(o, "TRACES"));
            });
        }
        return services;
    }

    /// <summary>
    /// The tracer provider of a program without a host (netctl): null unless OTLP traces are
    /// exported. Dispose it before exiting: that flushes the spans.
    /// </summary>
    public static TracerProvider? StartTracing(string serviceName) => TracesExported
        ? Sdk.CreateTracerProviderBuilder()
            .ConfigureResource(r => r.AddService(serviceName, serviceVersion: ProgramInfo.Version))
            .AddSource("ControlPlane.*")
            .SetSampler(SamplerFromEnvironment())
            .AddOtlpExporter(o => ForSignal(o, "TRACES"))
            .Build()
        : null;

    /// <summary>
    /// The sampler OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG name (OpenTelemetry's values;
    /// parentbased_always_on when unset), with one difference in the parent-based ones: a span
    /// whose parent is not sampled is made all the same, recorded but never exported
    /// (<see cref="SamplingDecision.RecordOnly"/>), where the SDK would make none. Orleans passes a
    /// trace on to the grain it calls only through a span of its own, so with no span there the
    /// grain's work started new traces, sampled, under ids the caller never sees; with it, a
    /// caller's "not sampled" holds for everything its call causes. A value that is not one of
    /// those is a configuration error naming the variable.
    /// </summary>
    public static Sampler SamplerFromEnvironment()
    {
        var name = Environment.GetEnvironmentVariable("OTEL_TRACES_SAMPLER") is { Length: > 0 } set ? set : "parentbased_always_on";
        var argument = Environment.GetEnvironmentVariable("OTEL_TRACES_SAMPLER_ARG");
        double Ratio() => string.IsNullOrEmpty(argument) ? 1.0
            : double.TryParse(argument, System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out var ratio) && ratio is >= 0 and <= 1
                ? ratio
                : throw new InvalidConfigurationException($"Invalid configuration:\n  OTEL_TRACES_SAMPLER_ARG must be a ratio from 0 to 1, not '{argument}'");
        return name switch
        {
            "always_on" => new AlwaysOnSampler(),
            "always_off" => new AlwaysOffSampler(),
            "traceidratio" => new TraceIdRatioBasedSampler(Ratio()),
            "parentbased_always_on" => new FollowingParentSampler(new AlwaysOnSampler()),
            "parentbased_always_off" => new FollowingParentSampler(new AlwaysOffSampler()),
            "parentbased_traceidratio" => new FollowingParentSampler(new TraceIdRatioBasedSampler(Ratio())),
            _ => throw new InvalidConfigurationException(
                $"Invalid configuration:\n  OTEL_TRACES_SAMPLER must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio, not '{name}'"),
        };
    }

    /// <summary>Parent-based sampling whose unsampled children are made, unexported (see <see cref="SamplerFromEnvironment"/>).</summary>
    private sealed class FollowingParentSampler(Sampler root) : Sampler
    {
        private static readonly SamplingResult Sampled = new(SamplingDecision.RecordAndSample);
        private static readonly SamplingResult NotSampled = new(SamplingDecision.RecordOnly);

        public override SamplingResult ShouldSample(in SamplingParameters parameters)
        {
            if (parameters.ParentContext.TraceId == default) return root.ShouldSample(parameters);
            return (parameters.ParentContext.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? Sampled : NotSampled;
        }
    }

    /// <summary>
    /// Applies OTEL_EXPORTER_OTLP_{signal}_ENDPOINT, _PROTOCOL, _HEADERS and _TIMEOUT, which win
    /// over the general variables (OpenTelemetry's specification). The endpoint is used as it is,
    /// with no signal path appended (the specification again; the exporter does that only for an
    /// endpoint it read itself). A value that is not usable is a configuration error naming the
    /// variable, not an exporter that silently sends somewhere else.
    /// </summary>
    public static void ForSignal(OtlpExporterOptions options, string signal)
    {
        var prefix = $"OTEL_EXPORTER_OTLP_{signal}_";
        if (Environment.GetEnvironmentVariable(prefix + "ENDPOINT") is { Length: > 0 } endpoint)
        {
            options.Endpoint = Uri.TryCreate(endpoint, UriKind.Absolute, out var uri) && uri.Scheme is "http" or "https"
                ? uri
                : throw Invalid($"{prefix}ENDPOINT must be an http(s) URL, not '{endpoint}'");
        }
        if (Environment.GetEnvironmentVariable(prefix + "PROTOCOL") is { Length: > 0 } protocol)
        {
            options.Protocol = protocol switch
            {
                "grpc" => OtlpExportProtocol.Grpc,
                "http/protobuf" => OtlpExportProtocol.HttpProtobuf,
                _ => throw Invalid($"{prefix}PROTOCOL must be grpc or http/protobuf, not '{protocol}'"),
            };
        }
        if (Environment.GetEnvironmentVariable(prefix + "HEADERS") is { Length: > 0 } headers)
        {
            options.Headers = headers;
        }
        if (Environment.GetEnvironmentVariable(prefix + "TIMEOUT") is { Length: > 0 } timeout)
        {
            options.TimeoutMilliseconds = int.TryParse(timeout, System.Globalization.NumberStyles.None, null, out var ms) && ms > 0
                ? ms
                : throw Invalid($"{prefix}TIMEOUT must be a whole number of milliseconds, not '{timeout}'");
        }

        static InvalidConfigurationException Invalid(string problem) => new("Invalid configuration:\n  " + problem);
    }

    /// <summary>The W3C traceparent of <paramref name="context"/> ("00-trace-span-flags").</summary>
    public static string TraceparentOf(ActivityContext context) =>
        $"00-{context.TraceId.ToHexString()}-{context.SpanId.ToHexString()}-{((context.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? "01" : "00")}";

    /// <summary>The context a traceparent names, or default when it is empty or malformed.</summary>
    public static ActivityContext ContextOf(string? traceparent) =>
        !string.IsNullOrEmpty(traceparent) && ActivityContext.TryParse(traceparent, null, isRemote: true, out var context) ? context : default;

    /// <summary>
    /// Metrics:Listen, "address:port" (IPv6 in brackets; 0.0.0.0 or [::] for every address;
    /// "localhost" is 127.0.0.1) → where to listen. A port in use is one line and exit 1 before the
    /// program starts (<see cref="ListenAddressException"/>), anything else exit 2.
    /// </summary>
    public static IPEndPoint ListenOf(string listen)
    {
        var colon = listen.LastIndexOf(':');
        var endpoint = IPEndPoint.TryParse(listen, out var parsed) && parsed.Port > 0 ? parsed
            : colon > 0 && listen[..colon] == "localhost" && int.TryParse(listen.AsSpan(colon + 1), out var port) && port is > 0 and < 65536
                ? new IPEndPoint(IPAddress.Loopback, port)
                : throw new InvalidConfigurationException($"Invalid configuration:\n  Metrics:Listen must be address:port, not '{listen}'");
        ListenAddress.RequireFree("Metrics:Listen", endpoint);
        return endpoint;
    }

    private static bool IsSet(string variable) => !string.IsNullOrEmpty(Environment.GetEnvironmentVariable(variable));
}
