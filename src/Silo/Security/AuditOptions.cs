namespace ControlPlane.Silo.Security;

/// <summary>The audit log of writes (configuration section "Audit").</summary>
public sealed class AuditOptions
{
    /// <summary>Records every write call; on by default.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The JSON-lines file appended to; empty means <c>&lt;Silo:DataDirectory&gt;/audit.jsonl</c>.</summary>
    public string Path { get; set; } = string.Empty;

    /// <summary>Rotate the log once it is larger than this many bytes (0: never; the default is 100 MiB).</summary>
    public long MaxFileBytes { get; set; } = 100L * 1024 * 1024;

    /// <summary>Rotated files kept besides the current one (audit.jsonl.1 … audit.jsonl.N).</summary>
    public int MaxFiles { get; set; } = 10;

    /// <summary>What is wrong with these settings, one line each.</summary>
    public IEnumerable<string> Validate()
    {
        if (MaxFileBytes < 0) yield return $"Audit:MaxFileBytes {MaxFileBytes} must be 0 (never rotate) or more";
        if (MaxFiles < 0) yield return $"Audit:MaxFiles {MaxFiles} must not be negative";
    }
}
