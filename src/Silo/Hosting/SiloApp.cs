using System.Net;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.Hosting;
using ControlPlane.Dns;
using ControlPlane.Grains;
using ControlPlane.Grains.Controllers;
using ControlPlane.Grains.Resources;
using ControlPlane.Runtime.Grains;
using ControlPlane.Runtime.Storage;
using ControlPlane.Silo.Api;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Composes a silo: configuration, the embedded store, the runtime with every grain, the
/// controllers and the gRPC endpoint. Used by Program and by tests that host a silo in-process.
/// </summary>
public static class SiloApp
{
    public static WebApplication Build(string[] args, Action<IConfigurationBuilder>? configure = null)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = args, ContentRootPath = AppContext.BaseDirectory });
        ProgramDefaults.Apply(builder);
        configure?.Invoke(builder.Configuration);
        var silo = builder.Configuration.GetSection("Silo").Get<SiloOptions>() ?? new SiloOptions();
        var runtimeOptions = builder.Configuration.GetSection("Runtime").Get<RuntimeOptions>() ?? new RuntimeOptions();
        var controlPlane = builder.Configuration.GetSection("ControlPlane").Get<ControlPlaneOptions>() ?? new ControlPlaneOptions();
        Validate(silo, controlPlane);

        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            kestrel.Limits.MaxRequestBodySize = null;
            kestrel.Limits.Http2.MaxStreamsPerConnection = 1000;
            // gRPC needs HTTP/2; without TLS that means prior knowledge (h2c), so the API port speaks HTTP/2 only.
            kestrel.Listen(IPAddress.Parse(silo.ListenAddress), silo.Port, o => o.Protocols = HttpProtocols.Http2);
            if (silo.UnixSocket.Length > 0)
            {
                File.Delete(silo.UnixSocket);
                kestrel.ListenUnixSocket(silo.UnixSocket, o => o.Protocols = HttpProtocols.Http2);
            }
            if (silo.HealthPort > 0)
            {
                kestrel.Listen(IPAddress.Parse(silo.ListenAddress), silo.HealthPort, o => o.Protocols = HttpProtocols.Http1);
            }
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(10));
        builder.Services.AddSingleton(silo);
        builder.Services.AddSingleton(runtimeOptions);
        builder.Services.AddSingleton(controlPlane);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton<IGrainStore>(_ => new SqliteGrainStore(Path.Combine(silo.DataDirectory, "controlplane.db"), silo.SynchronousFull));
        builder.Services.AddSingleton(services => new GrainRuntime(
                services.GetRequiredService<IGrainStore>(), runtimeOptions, services, services.GetRequiredService<ILogger<GrainRuntime>>())
            .RegisterControlPlaneGrains());
        builder.Services.AddSingleton<FeedController, ServiceEndpointsController>();
        builder.Services.AddSingleton<FeedController, NodeLifecycleController>();
        builder.Services.AddSingleton<ControllerHost>();
        builder.Services.AddHostedService(services => services.GetRequiredService<ControllerHost>());
        builder.Services.AddSingleton<GrpcServer>();
        AddEmbeddedDns(builder, silo);

        var app = builder.Build();
        var runtime = app.Services.GetRequiredService<GrainRuntime>();
        var server = app.Services.GetRequiredService<GrpcServer>();
        var controllers = app.Services.GetRequiredService<ControllerHost>();
        var lifetime = app.Services.GetRequiredService<IHostApplicationLifetime>();
        server.MaxReceiveMessageSize = silo.MaxReceiveMessageSize;
        server.ExceptionClassifier = StatusMapping.Classify;
        ApiMap.MapAll(server, runtime, controlPlane);
        new WatchApi(runtime, silo.DefaultBookmarkInterval, lifetime.ApplicationStopping).Map(server);
        HealthApi.Map(server, () => controllers.Synced && !lifetime.ApplicationStopping.IsCancellationRequested);

        app.Use(async (context, next) =>
        {
            if (GrpcServer.IsGrpcRequest(context.Request))
            {
                await server.HandleAsync(context).ConfigureAwait(false);
                return;
            }
            if (HttpMethods.IsGet(context.Request.Method) && context.Request.Path == "/healthz")
            {
                var ok = controllers.Synced && !lifetime.ApplicationStopping.IsCancellationRequested;
                context.Response.StatusCode = ok ? StatusCodes.Status200OK : StatusCodes.Status503ServiceUnavailable;
                await context.Response.WriteAsync(ok ? "ok\n" : "not ready\n").ConfigureAwait(false);
                return;
            }
            await next(context).ConfigureAwait(false);
        });
        // The runtime is disposed with the service provider, after the server has stopped:
        // queued writes are committed, then the change hub is closed.
        return app;
    }

    /// <summary>
    /// The single-node default: the cluster DNS server runs inside the silo ("Dns:Enabled") and
    /// follows the silo's own Watch stream over its unix socket or loopback port.
    /// </summary>
    private static void AddEmbeddedDns(WebApplicationBuilder builder, SiloOptions silo)
    {
        var dns = builder.Configuration.GetSection("Dns");
        if (!dns.GetValue<bool>("Enabled"))
        {
            return;
        }
        if (string.IsNullOrEmpty(dns["ControlPlane"]))
        {
            var loopback = IPAddress.Parse(silo.ListenAddress) is var a && (a.Equals(IPAddress.Any) || a.Equals(IPAddress.IPv6Any)) ? "127.0.0.1" : silo.ListenAddress;
            dns["ControlPlane"] = silo.UnixSocket.Length > 0 ? "unix:" + silo.UnixSocket
                : silo.Port > 0 ? $"http://{(loopback.Contains(':') ? $"[{loopback}]" : loopback)}:{silo.Port}"
                : throw new InvalidOperationException("Invalid configuration:\n  Dns:Enabled needs a fixed Silo:Port or a Silo:UnixSocket to follow");
        }
        builder.Services.AddClusterDns(dns);
    }

    private static void Validate(SiloOptions silo, ControlPlaneOptions controlPlane)
    {
        var errors = new List<string>();
        if (!IPAddress.TryParse(silo.ListenAddress, out _)) errors.Add($"Silo:{nameof(silo.ListenAddress)} '{silo.ListenAddress}' is not an IP address");
        if (silo.Port is < 0 or > 65535) errors.Add($"Silo:{nameof(silo.Port)} {silo.Port} is outside 0..65535");
        if (silo.HealthPort is < 0 or > 65535) errors.Add($"Silo:{nameof(silo.HealthPort)} {silo.HealthPort} is outside 0..65535");
        if (silo.MaxReceiveMessageSize < 1024) errors.Add($"Silo:{nameof(silo.MaxReceiveMessageSize)} must be at least 1024");
        if (controlPlane.UnderlayMtu is < 1280 or > 9216) errors.Add($"ControlPlane:{nameof(controlPlane.UnderlayMtu)} {controlPlane.UnderlayMtu} is outside 1280..9216");
        if (controlPlane.NodeLeaseDuration <= TimeSpan.Zero) errors.Add($"ControlPlane:{nameof(controlPlane.NodeLeaseDuration)} must be positive");
        foreach (var (name, cidr) in new[] { (nameof(controlPlane.ServiceIpv4Cidr), controlPlane.ServiceIpv4Cidr), (nameof(controlPlane.ServiceIpv6Cidr), controlPlane.ServiceIpv6Cidr) })
        {
            if (cidr.Length == 0) continue;
            try
            {
                var prefix = Grains.Ipam.IpPrefix.Parse(name, cidr);
                if (prefix.Bits - prefix.Length > 20) errors.Add($"ControlPlane:{name} {cidr} is larger than 2^20 addresses");
            }
            catch (Runtime.Errors.ControlPlaneException e)
            {
                errors.Add($"ControlPlane:{e.Message}");
            }
        }
        if (errors.Count > 0)
        {
            throw new InvalidOperationException("Invalid configuration:\n  " + string.Join("\n  ", errors));
        }
    }
}
