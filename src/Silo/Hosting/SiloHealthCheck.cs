using ControlPlane.Storage.GrainStorage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Whether this silo serves: not stopping, an active member of its cluster (and not paused
/// since it last confirmed that, see <see cref="MembershipGuard"/>), its controllers have synced,
/// and its store takes writes (not lost, not fenced by another silo). grpc.health.v1 and
/// /healthz both report it.
/// A failed commit counts at once; otherwise a probe (a write transaction that commits nothing,
/// which also notices fencing while no write is made) decides, at most once a second.
/// </summary>
public sealed class SiloHealthCheck(ControllerHost controllers, DurableStore store, MembershipGuard guard, IClusterMembershipService membership,
    ILocalSiloDetails self, IHostApplicationLifetime lifetime, TimeProvider time) : IHealthCheck
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(1);
    private readonly Lock _lock = new();
    private DateTimeOffset _nextProbe;

    public Task<HealthCheckResult> CheckHealthAsync(HealthCheckContext context, CancellationToken cancellationToken = default) =>
        Task.FromResult(Check() is { } reason ? HealthCheckResult.Unhealthy(reason) : HealthCheckResult.Healthy());

    /// <summary>Null when serving, else why not.</summary>
    public string? Check()
    {
        if (lifetime.ApplicationStopping.IsCancellationRequested) return "the silo is stopping";
        if (guard.Reason is { } paused) return paused;
        if (membership.CurrentSnapshot.GetSiloStatus(self.SiloAddress) is var status && status != SiloStatus.Active)
        {
            return $"this silo is not an active cluster member (its status is {status})";
        }
        if (!controllers.Synced) return "the controllers have not synced yet";
        return StoreFailure();
    }

    private string? StoreFailure()
    {
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (now >= _nextProbe)
            {
                _nextProbe = now + ProbeInterval;
                store.Committer.Probe();
            }
        }
        // A commit that failed since the last probe counts at once.
        return store.Committer.Failure;
    }
}
