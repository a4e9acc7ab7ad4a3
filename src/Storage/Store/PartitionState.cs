namespace ControlPlane.Storage;

/// <summary>Ownership and log bounds of the partitions, as read when a silo takes them.</summary>
/// <param name="Epochs">The fencing epoch under which the caller now owns each partition.</param>
/// <param name="Heads">The last committed revision of each partition.</param>
/// <param name="Compacted">Changes at or below this revision are gone from the log.</param>
/// <param name="StoreId">
/// Random, chosen when the store was created (or first opened by a version that had none): resume
/// tokens carry it, so a token of a replaced store is told from one of this store.
/// </param>
public sealed record PartitionState(long[] Epochs, long[] Heads, long[] Compacted, ulong StoreId)
{
    public int Count => Heads.Length;
}
