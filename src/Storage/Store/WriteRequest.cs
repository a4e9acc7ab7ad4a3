namespace ControlPlane.Storage;

/// <summary>
/// A conditional write of one object. It commits only if the object's current revision equals
/// <see cref="ExpectedRevision"/> (0: the object must not exist), the writer's epoch still owns
/// the partition, and no other object holds any of its <see cref="Claims"/>.
/// </summary>
public sealed class WriteRequest
{
    public required string Kind { get; init; }
    public required string Key { get; init; }
    public required int Partition { get; init; }
    public required long ExpectedRevision { get; init; }
    /// <summary>
    /// For a create: the revision of the object's last delete as the writer saw it when it found
    /// no object (0: it saw none). A deleted object leaves a tombstone with its delete's revision
    /// for as long as the change log keeps that delete, and a create that saw another tombstone
    /// (or none, where there is one now) is a <see cref="WriteOutcome.Conflict"/>: a writer that
    /// read before someone else created and deleted the object, a stale duplicate activation,
    /// cannot bring it back.
    /// </summary>
    public long DeletedRevision { get; init; }
    /// <summary>New state; null deletes the object (and releases every claim it held).</summary>
    public byte[]? Data { get; init; }
    /// <summary>The last state, recorded in the change log when deleting.</summary>
    public byte[]? PreviousData { get; init; }
    public string Namespace { get; init; } = string.Empty;
    public string Index { get; init; } = string.Empty;
    /// <summary>For an update that changes <see cref="Index"/>: the value before (see <see cref="Change.PreviousIndex"/>).</summary>
    public string? PreviousIndex { get; init; }

    /// <summary>What the change of this write records as <see cref="Change.PreviousIndex"/>: only a modification's move.</summary>
    public string? PreviousIndexFor(ChangeType type) =>
        type == ChangeType.Modified && PreviousIndex is { } before && before != Index ? before : null;
    /// <summary>
    /// Everything the new state holds, replacing what the object held before; null keeps the
    /// object's claims as they are (most updates).
    /// </summary>
    public IReadOnlyList<Claim>? Claims { get; init; }
    /// <summary>
    /// Objects that must exist when this write commits (a create's namespace, an endpoint's node);
    /// the writer refers to them with <see cref="Claim.Reference"/> claims, which keep them from
    /// being deleted from then on. Checked in the commit's transaction, so a create and a delete of
    /// what it refers to cannot both commit.
    /// </summary>
    public IReadOnlyList<(string Kind, string Key)>? Requires { get; init; }
    /// <summary>
    /// For a delete: no object of these kinds may have a key under this prefix when it commits (a
    /// namespace's contents, whose keys are "namespace/name"). The other side of
    /// <see cref="Requires"/> where the keys tell the referrers, so they need no reference claim.
    /// </summary>
    public (IReadOnlyList<string> Kinds, string KeyPrefix)? RequiresNone { get; init; }
    /// <summary>The epoch under which this silo owns the partition.</summary>
    public long Epoch { get; set; }
    /// <summary>The span of this write, handed on to its change (see <see cref="Change.TraceContext"/>).</summary>
    public System.Diagnostics.ActivityContext TraceContext { get; set; }
    /// <summary>Set by the store when the outcome is <see cref="WriteOutcome.ClaimTaken"/>.</summary>
    public ClaimHolder? TakenBy { get; set; }
    /// <summary>Set by the store when the outcome is <see cref="WriteOutcome.Unreferenceable"/> or <see cref="WriteOutcome.Referenced"/>: the missing object, or one referrer.</summary>
    public (string Kind, string Key) Reference { get; set; }

    /// <summary>
    /// Whether a create saw the object's current tombstone: <paramref name="tombstone"/> is the
    /// revision of the tombstone now (0: none), <paramref name="compacted"/> the partition's
    /// compacted revision (tombstones at or below it are gone with their change records).
    /// </summary>
    public bool SawTombstone(long tombstone, long compacted) =>
        tombstone == DeletedRevision || (tombstone == 0 && DeletedRevision <= compacted);
}
