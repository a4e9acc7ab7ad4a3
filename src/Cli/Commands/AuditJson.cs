namespace ControlPlane.Cli.Commands;

/// <summary>Source-generated reading of audit log lines (field names as the silo writes them).</summary>
[System.Text.Json.Serialization.JsonSourceGenerationOptions(PropertyNamingPolicy = System.Text.Json.Serialization.JsonKnownNamingPolicy.CamelCase)]
[System.Text.Json.Serialization.JsonSerializable(typeof(AuditCommand.Entry))]
internal sealed partial class AuditJson : System.Text.Json.Serialization.JsonSerializerContext;
