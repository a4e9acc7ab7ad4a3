namespace ControlPlane.Storage;

/// <summary>Ownership and log bounds of the partitions, as read when a silo takes them.</summary>
/// <param name="Epochs">The fencing epoch under which the caller now owns each partition.</param>
/// <param name="Heads">The last committed revision of each partition.</param>
/// <param name="Compacted">Changes at or below this revision are gone from the log.</param>
public sealed record PartitionState(long[] Epochs, long[] Heads, long[] Compacted)
{
    public int Count => Heads.Length;
}
