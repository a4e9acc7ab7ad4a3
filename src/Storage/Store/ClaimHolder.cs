namespace ControlPlane.Storage;

/// <summary>The object that already holds a claim a write asked for.</summary>
[GenerateSerializer]
[Alias("controlplane.ClaimHolder")]
public sealed record ClaimHolder([property: Id(0)] Claim Claim, [property: Id(1)] string Kind, [property: Id(2)] string Key);
