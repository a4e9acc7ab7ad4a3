using ControlPlane.Storage.GrainStorage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Whether this silo serves: not stopping, its controllers have synced, and its store takes
/// writes (not lost, not fenced by another silo). grpc.health.v1 and /healthz both report it.
/// While the last commit succeeded the store counts as writable; otherwise a probe (a write
/// transaction that commits nothing) decides, at most once a second.
/// </summary>
public sealed class SiloHealthCheck(ControllerHost controllers, DurableStore store, IHostApplicationLifetime lifetime, TimeProvider time) : IHealthCheck
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(1);
    private readonly Lock _lock = new();
    private DateTimeOffset _nextProbe;
    private string? _probed;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(Check() is { } reason ? HealthCheckResult.Unhealthy(reason) : HealthCheckResult.Healthy());

    /// <summary>Null when serving, else why not.</summary>
    public string? Check()
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested) return "the silo is stopping";
        if (!controllers.Synced) return "the controllers have not synced yet";
        return StoreFailure();
    }

    private string? StoreFailure()
    {
        if (store.Committer.Failure is null && _probed is null)
        {
            return null;
        }
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (now >= _nextProbe)
            {
                _nextProbe = now + ProbeInterval;
                _probed = store.Committer.Probe();
            }
            return _probed;
        }
    }
}
