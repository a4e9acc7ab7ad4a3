namespace ControlPlane.Runtime.Storage;

/// <summary>
/// A conditional write of one object. It commits only if the object's current revision equals
/// <see cref="ExpectedRevision"/> (0: the object must not exist) and the writer's epoch still
/// owns the partition.
/// </summary>
public sealed class WriteRequest
{
    public required string Kind { get; init; }
    public required string Key { get; init; }
    public required int Partition { get; init; }
    public required long ExpectedRevision { get; init; }
    /// <summary>New state; null deletes the object.</summary>
    public byte[]? Data { get; init; }
    /// <summary>The last state, recorded in the change log when deleting.</summary>
    public byte[]? PreviousData { get; init; }
    public string Namespace { get; init; } = string.Empty;
    public string Index { get; init; } = string.Empty;
    /// <summary>The epoch under which this silo owns the partition.</summary>
    public long Epoch { get; set; }
}
