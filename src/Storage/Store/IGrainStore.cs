namespace ControlPlane.Storage;

/// <summary>
/// Durable storage of grain state and the change log. Writes arrive in batches from the group
/// committer, the only writer of its silo; reads may come from any thread. A store that several
/// silos write (<see cref="ISharedLog"/>) is read back by each silo to learn every change.
/// </summary>
public interface IGrainStore : IDisposable
{
    /// <summary>
    /// Creates the schema if needed and takes ownership of every partition, bumping each epoch so
    /// that any earlier owner can no longer commit. <paramref name="partitionCount"/> applies only
    /// to a new store; an existing store keeps its own count.
    /// </summary>
    PartitionState Open(string owner, int partitionCount);

    StoredObject? Read(string kind, string key);

    /// <summary>
    /// <see cref="Read"/> without blocking the caller on I/O: what grains use (a grain's
    /// scheduler must never wait on a network round trip).
    /// </summary>
    ValueTask<StoredObject?> ReadAsync(string kind, string key);

    /// <summary>
    /// What an activation reads: the object, or when it does not exist the revision of its delete
    /// while the change log keeps that delete (else 0), which its create names
    /// (<see cref="WriteRequest.DeletedRevision"/>). One read.
    /// </summary>
    ValueTask<(StoredObject? Object, long DeletedRevision)> ReadForActivationAsync(string kind, string key);

    /// <summary>
    /// Commits the batch in one transaction: for each request the object row and a change record
    /// with the next revision of its partition. A request whose condition fails is skipped and
    /// reported; the others commit. Throws when the store itself fails (nothing commits).
    /// </summary>
    void Commit(IReadOnlyList<WriteRequest> batch, WriteOutcome[] outcomes, Change?[] changes);

    /// <summary><see cref="Commit"/> without blocking on I/O (a store reached over the network).</summary>
    Task CommitAsync(IReadOnlyList<WriteRequest> batch, WriteOutcome[] outcomes, Change?[] changes);

    /// <summary>Objects of the given kinds in key order after <paramref name="afterKey"/>.</summary>
    ObjectPage List(IReadOnlyList<string> kinds, string? keyPrefix, string? afterKey, int limit);

    /// <summary><see cref="List"/> without blocking the caller on I/O.</summary>
    ValueTask<ObjectPage> ListAsync(IReadOnlyList<string> kinds, string? keyPrefix, string? afterKey, int limit);

    /// <summary>Every claim held in a scope, with its holder (allocators rebuild from these).</summary>
    IReadOnlyList<ClaimHolder> ListClaims(string scope);

    /// <summary><see cref="ListClaims"/> without blocking the caller on I/O.</summary>
    ValueTask<IReadOnlyList<ClaimHolder>> ListClaimsAsync(string scope);

    /// <summary>The holder of the claim that starts at <paramref name="low"/> in a scope (one value's claim: that value), or null.</summary>
    ValueTask<ClaimHolder?> FindClaimAsync(string scope, byte[] low);

    /// <summary>
    /// Changes after <paramref name="after"/> (one revision per partition), in revision order per
    /// partition, at most <paramref name="limit"/> of each partition (readers page through a long
    /// log instead of holding it all). Throws <see cref="Errors.ErrorCode.RevisionCompacted"/> if
    /// any are compacted.
    /// </summary>
    ChangeRange ReadChanges(long[] after, int limit);

    /// <summary><see cref="ReadChanges"/> without blocking the caller on I/O.</summary>
    Task<ChangeRange> ReadChangesAsync(long[] after, int limit);

    /// <summary>
    /// Opens a write transaction and rolls it back: null if this silo can still write with the
    /// given epochs, else why not (the store is unreachable, or another owner took a partition).
    /// With <paramref name="commit"/> the transaction writes a row without changing it and commits,
    /// which is what tells that the store can commit again after a commit failed (a full disk
    /// still lets a transaction begin, read and roll back).
    /// </summary>
    string? ProbeWritable(long[] epochs, bool commit = false);

    /// <summary>Drops change records so that each partition keeps at most <paramref name="retain"/>.</summary>
    long[] Compact(long retain);
}
