namespace ControlPlane.Runtime.Grains;

/// <summary>Settings of the actor runtime (configuration section "Runtime").</summary>
public sealed class RuntimeOptions
{
    /// <summary>An activation with no call for this long is deactivated; its state reloads on the next call.</summary>
    public TimeSpan IdleTimeout { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Partitions of the key space in a new store (an existing store keeps its own count).</summary>
    public int Partitions { get; set; } = 16;

    /// <summary>Change records kept per partition; older ones are compacted away.</summary>
    public long ChangeLogRetention { get; set; } = 100_000;

    /// <summary>How often the change log is compacted.</summary>
    public TimeSpan CompactionInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Identity of this silo as a partition owner.</summary>
    public string SiloId { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId}";
}
