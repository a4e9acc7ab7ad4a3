namespace ControlPlane.Storage;

/// <summary>Changes read from the log after a position, with the heads they were read at.</summary>
public sealed record ChangeRange(IReadOnlyList<Change> Changes, long[] Heads);
