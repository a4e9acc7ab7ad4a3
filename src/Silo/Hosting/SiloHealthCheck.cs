using ControlPlane.Storage.GrainStorage;
using Microsoft.Extensions.Diagnostics.HealthChecks;
using Microsoft.Extensions.Hosting;
using Orleans.Runtime;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Whether this silo serves: not stopping, an active member of its cluster (and not paused
/// since it last confirmed that, see <see cref="MembershipGuard"/>), its controllers have synced,
/// its store takes writes (not lost, not fenced by another silo), its embedded DNS server, when on,
/// answers from its first zone, and its audit log, when on, takes lines. grpc.health.v1 and /healthz both report it.
/// A failed commit counts at once; otherwise a probe (a write transaction that commits nothing,
/// which also notices fencing while no write is made) decides, at most once a second, and a probe
/// the store leaves unanswered for two seconds is a failure too.
/// </summary>
public sealed class SiloHealthCheck(ControllerHost controllers, DurableStore store, MembershipGuard guard, IClusterMembershipService membership,
    ILocalSiloDetails self, IHostApplicationLifetime lifetime, TimeProvider time, Security.AuditLog? audit = null,
    ControlPlane.Dns.Feed.ClusterFeed? dns = null) : IHealthCheck
{
    private static readonly TimeSpan ProbeInterval = TimeSpan.FromSeconds(1);
    // How long a check waits for a probe it started (a store that answers does so in milliseconds),
    // and how long a probe may go unanswered before the store counts as failed (a hung PostgreSQL).
    private static readonly TimeSpan ProbeWait = TimeSpan.FromMilliseconds(500);
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromSeconds(2);
    private readonly Lock _lock = new();
    private DateTimeOffset _nextProbe;
    private Task _probe = Task.CompletedTask;
    private DateTimeOffset _probeStarted;
    private DateTimeOffset _nextAuditProbe;

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
        // The embedded DNS server answers SERVFAIL until its first zone is built (after a restart,
        // a few hundred milliseconds after the API): a silo that serves serves names too.
        if (dns is { Synced.IsCompleted: false }) return "the embedded DNS server has not built its first zone yet";
        return StoreFailure() ?? AuditFailure();
    }

    /// <summary>
    /// The audit log's failure, if it has one: a silo that cannot audit answers every write
    /// INTERNAL. A check tries the gap's line (at most once a second), so the silo serves again
    /// once the log takes lines, even when no write comes to show it.
    /// </summary>
    private string? AuditFailure()
    {
        if (audit?.Failure is null) return null;
        var now = time.GetUtcNow();
        lock (_lock)
        {
            if (now < _nextAuditProbe) return Reason(audit.Failure);
            _nextAuditProbe = now + ProbeInterval;
        }
        return audit.TryResume(now) ? null : Reason(audit.Failure);

        static string? Reason(string? failure) => failure is null ? null : $"the audit log takes no lines ({failure}), so every write is answered INTERNAL";
    }

    /// <summary>
    /// The store's failure, probing it at most once a second. The probe runs apart from the check:
    /// a store that hangs (a stopped PostgreSQL) would otherwise hang every health call with it.
    /// A check waits briefly for the probe it started; one unanswered for two seconds is a failure.
    /// </summary>
    private string? StoreFailure()
    {
        Task probe;
        lock (_lock)
        {
            var now = time.GetUtcNow();
            if (!_probe.IsCompleted)
            {
                if (now - _probeStarted >= ProbeTimeout)
                {
                    return $"the store has not answered for {(now - _probeStarted).TotalSeconds:0} s";
                }
            }
            else if (now >= _nextProbe)
            {
                _nextProbe = now + ProbeInterval;
                _probeStarted = now;
                _probe = Task.Run(() => store.Committer.Probe());
            }
            probe = _probe;
        }
        probe.Wait(ProbeWait);
        // A commit that failed since the last probe counts at once.
        return store.Committer.Failure;
    }
}
