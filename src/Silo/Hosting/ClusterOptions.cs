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

    /// <summary>An activation with no call for this long is collected; its state reloads on the next call.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);
}
