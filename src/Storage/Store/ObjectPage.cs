namespace ControlPlane.Storage;

/// <summary>One page of a list, read in one snapshot together with the partition heads.</summary>
public sealed record ObjectPage(IReadOnlyList<StoredObject> Objects, long[] Heads, bool HasMore);
