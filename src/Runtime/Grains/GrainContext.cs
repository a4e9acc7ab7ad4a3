namespace ControlPlane.Runtime.Grains;

/// <summary>What the runtime tells an activation about itself.</summary>
internal sealed record GrainContext(GrainId Id, int Partition, GrainRuntime Runtime);
