namespace ControlPlane.Silo.Hosting;

/// <summary>How the silo joins its Orleans cluster (configuration section "Cluster").</summary>
public sealed class ClusterOptions
{
    /// <summary>Where membership lives: "localhost" (the embedded default: one silo, no external service) or "redis".</summary>
    public string Membership { get; set; } = "localhost";

    /// <summary>StackExchange.Redis configuration of the membership store, e.g. "127.0.0.1:6379".</summary>
    public string Redis { get; set; } = string.Empty;

    /// <summary>Orleans' cluster identity: silos with the same ids form one cluster.</summary>
    public string ClusterId { get; set; } = "controlplane";

    public string ServiceId { get; set; } = "controlplane";

    /// <summary>Silo-to-silo port (on loopback with localhost clustering); 0 picks a free one.</summary>
    public int SiloPort { get; set; }

    /// <summary>The address other silos reach this one at (redis clustering); empty: the first non-loopback address.</summary>
    public string AdvertisedAddress { get; set; } = string.Empty;

    /// <summary>
    /// How long a silo waits for another silo's answer to a liveness probe. A silo that misses
    /// <see cref="MissedProbes"/> probes in a row is voted dead and its grains move to the others:
    /// with the defaults a dead silo's grains answer elsewhere within about 4–6 s. Shorter
    /// timeouts detect faster but risk declaring a silo dead that was only busy.
    /// </summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Probes a silo may miss in a row before the others suspect it.</summary>
    public int MissedProbes { get; set; } = 2;

    /// <summary>
    /// How long a grain call may take, from the moment the silo sends it. A call still queued
    /// when this runs out is dropped, never executed late: an API client that gave up and tried
    /// again (on this or another silo) cannot have its first attempt overtake the second one.
    /// </summary>
    public TimeSpan GrainCallTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>An activation with no call for this long is collected; its state reloads on the next call.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);
}
