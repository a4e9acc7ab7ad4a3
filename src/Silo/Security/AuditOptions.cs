namespace ControlPlane.Silo.Security;

/// <summary>The audit log of writes (configuration section "Audit").</summary>
public sealed class AuditOptions
{
    /// <summary>Records every write call; on by default.</summary>
    public bool Enabled { get; set; } = true;

    /// <summary>The JSON-lines file appended to; empty means <c>&lt;Silo:DataDirectory&gt;/audit.jsonl</c>.</summary>
    public string Path { get; set; } = string.Empty;
}
