namespace ControlPlane.Storage.GrainStorage;

/// <summary>Settings of the durable store (configuration section "Store").</summary>
public sealed class StoreOptions
{
    /// <summary>"sqlite" (the embedded default: a file in Silo:DataDirectory, one silo) or "postgres" (shared by several silos).</summary>
    public string Provider { get; set; } = "sqlite";

    /// <summary>The PostgreSQL connection string (Npgsql), with "postgres".</summary>
    public string Postgres { get; set; } = string.Empty;

    /// <summary>Partitions of the key space in a new store (an existing store keeps its own count).</summary>
    public int Partitions { get; set; } = 16;

    /// <summary>Change records kept per partition; older ones are compacted away.</summary>
    public long ChangeLogRetention { get; set; } = 100_000;

    /// <summary>How often the change log is compacted.</summary>
    public TimeSpan CompactionInterval { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Identity of this silo as a partition owner.</summary>
    public string SiloId { get; set; } = $"{Environment.MachineName}-{Environment.ProcessId}";
}
