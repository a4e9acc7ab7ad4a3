using System.Net;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OpenTelemetry.Metrics;

namespace ControlPlane.Observability;

/// <summary>
/// Telemetry and health of a program that follows the control plane over a watch (the node agent,
/// the DNS server): OpenTelemetry as <see cref="Telemetry"/> sets it up, the program's
/// <see cref="WatchHealth"/>, and, when Metrics:Listen names an address, an HTTP/1.1 endpoint there
/// (<see cref="HealthAndMetricsServer"/>).
/// </summary>
public static class ProgramTelemetry
{
    /// <param name="services">The program's services.</param>
    /// <param name="serviceName">service.name (<see cref="Telemetry.AgentService"/>, <see cref="Telemetry.DnsService"/>).</param>
    /// <param name="watcher">The watch's name in the health gauge ("agent", "dns").</param>
    /// <param name="metricsListen">Metrics:Listen: "address:port", or null/empty for no endpoint.</param>
    /// <param name="resource">More resource attributes of its spans and metrics (the agent: its node).</param>
    public static IServiceCollection AddProgramTelemetry(this IServiceCollection services, string serviceName, string watcher, string? metricsListen,
        IEnumerable<KeyValuePair<string, object>>? resource = null)
    {
        var listen = string.IsNullOrEmpty(metricsListen) ? null : Telemetry.ListenOf(metricsListen);
        services.AddControlPlaneTelemetry(serviceName, metrics: listen is null ? null : m => m.AddPrometheusExporter(), resource: resource);
        services.AddSingleton(_ => new WatchHealth(watcher));
        if (listen is not null)
        {
            services.AddHostedService(s => new HealthAndMetricsServer(listen, s.GetRequiredService<MeterProvider>(), s.GetRequiredService<WatchHealth>()));
        }
        return services;
    }
}

/// <summary>
/// Kestrel on Metrics:Listen, HTTP/1.1: Prometheus text on <c>/metrics</c> (OpenTelemetry's ASP.NET
/// Core exporter, reading the program's own meter provider) and <c>/healthz</c>, 200 "ok" while the
/// program is ready (<see cref="WatchHealth.Ready"/>: its watch of the control plane is current and,
/// for the node agent, the data path is programmed from it), else 503 with the reason (the program
/// then works from its last view, or has none yet). Kestrel rather than the exporter's HttpListener,
/// which its authors mean for development: it takes no IPv6 address or 0.0.0.0 and answers 404 to
/// any Host header but the one configured, so Prometheus scraping 127.0.0.1 of a "localhost"
/// endpoint got nothing.
/// </summary>
public sealed class HealthAndMetricsServer(IPEndPoint listen, MeterProvider meters, WatchHealth health) : IHostedService, IAsyncDisposable
{
    private WebApplication? _app;

    public async Task StartAsync(CancellationToken cancellationToken)
    {
        var builder = WebApplication.CreateSlimBuilder();
        // The program logs; this server's own start and requests are not worth its lines.
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(listen));
        _app = builder.Build();
        _app.MapPrometheusScrapingEndpoint("/metrics", meters, configureBranchedPipeline: null, optionsName: null);
        _app.MapMethods("/healthz", [HttpMethods.Get, HttpMethods.Head], () =>
        {
            var (ready, reason) = health.Ready;
            return ready ? Results.Text("ok\n") : Results.Text(reason + "\n", statusCode: StatusCodes.Status503ServiceUnavailable);
        });
        await _app.StartAsync(cancellationToken).ConfigureAwait(false);
    }

    public async Task StopAsync(CancellationToken cancellationToken)
    {
        if (_app is not null) await _app.StopAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        if (_app is not null) await _app.DisposeAsync().ConfigureAwait(false);
    }
}
