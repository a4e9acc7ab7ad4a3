using ControlPlane.Contracts.Hosting;
using ControlPlane.Silo.Hosting;
using Grpc.AspNetCore.Server;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Silo.Security;

/// <summary>Adds the audit log and the per-client limits to the silo's gRPC API.</summary>
public static class SecurityHosting
{
    /// <summary>
    /// Reads "Audit" and "Limits" and puts their interceptors first, audit outermost (so it
    /// records the limits' refusals too), then the limits, then whatever AddGrpc configured.
    /// </summary>
    public static IServiceCollection AddAuditAndLimits(this IServiceCollection services, IConfiguration configuration, SiloOptions silo)
    {
        var audit = configuration.GetSection("Audit").Read<AuditOptions>(everyKey: true);
        var limits = configuration.GetSection("Limits").Read<LimitsOptions>(everyKey: true);
        var errors = audit.Validate().Concat(limits.Validate()).ToList();
        if (errors.Count > 0) throw new InvalidConfigurationException("Invalid configuration:\n  " + string.Join("\n  ", errors));
        services.AddSingleton(audit);
        services.AddSingleton(limits);
        var limited = limits.RequestsPerSecond > 0 || limits.WatchesPerClient > 0;
        if (audit.Enabled)
        {
            var path = audit.Path.Length > 0 ? audit.Path : Path.Combine(silo.DataDirectory, "audit.jsonl");
            services.AddSingleton(_ => new AuditLog(path, audit.MaxFileBytes, audit.MaxFiles));
            services.AddSingleton<AuditInterceptor>();
        }
        if (limited)
        {
            services.AddSingleton(s => new ClientLimiter(limits, s.GetRequiredService<TimeProvider>()));
            services.AddSingleton<LimitsInterceptor>();
        }
        services.PostConfigure<GrpcServiceOptions>(o =>
        {
            if (limited) MoveFirst<LimitsInterceptor>(o.Interceptors);
            if (audit.Enabled) MoveFirst<AuditInterceptor>(o.Interceptors);
        });
        return services;
    }

    private static void MoveFirst<T>(InterceptorCollection interceptors) where T : Grpc.Core.Interceptors.Interceptor
    {
        interceptors.Add<T>();
        var registration = interceptors[^1];
        interceptors.RemoveAt(interceptors.Count - 1);
        interceptors.Insert(0, registration);
    }
}
