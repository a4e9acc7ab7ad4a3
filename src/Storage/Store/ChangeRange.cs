using ControlPlane.Storage.Errors;

namespace ControlPlane.Storage;

/// <summary>
/// Changes read from the log after a position: every change up to <see cref="Through"/> (one
/// revision per partition), in commit order (so in revision order per partition).
/// <see cref="Complete"/> when that is the store's head in every partition at the read; otherwise
/// a partition reached its page limit and the caller reads on from <see cref="Through"/>.
/// </summary>
public sealed record ChangeRange(IReadOnlyList<Change> Changes, long[] Through, bool Complete)
{
    /// <summary>
    /// The range from changes read partition by partition in one snapshot, each with its commit
    /// sequence: a store-wide number taken while the write holds its partition, so it grows with
    /// the revision within a partition, and a write acknowledged before another began has the
    /// smaller one. They are put in that order. A partition whose page reached
    /// <paramref name="limit"/> may hold, past its page, changes committed before some read from
    /// other partitions; so everything committed after the earliest such page end is left for the
    /// next read, and page after page still comes in commit order. The earliest cut partition keeps
    /// its whole page, so each read moves on.
    /// </summary>
    public static ChangeRange InCommitOrder(List<(long Seq, Change Change)> read, long[] after, long[] heads, int limit)
    {
        read.Sort(static (a, b) => a.Seq.CompareTo(b.Seq));
        var count = new int[heads.Length];
        var lastSeq = new long[heads.Length];
        var lastRevision = (long[])after.Clone();
        foreach (var (seq, change) in read)
        {
            count[change.Partition]++;
            lastSeq[change.Partition] = seq;
            lastRevision[change.Partition] = change.Revision;
        }
        var cutoff = long.MaxValue;
        for (var p = 0; p < heads.Length; p++)
        {
            if (count[p] == limit && lastRevision[p] < heads[p]) cutoff = Math.Min(cutoff, lastSeq[p]);
        }
        if (cutoff == long.MaxValue)
        {
            return new ChangeRange([.. read.Select(r => r.Change)], (long[])heads.Clone(), true);
        }
        var kept = read.TakeWhile(r => r.Seq <= cutoff).Select(r => r.Change).ToList();
        var through = (long[])heads.Clone();
        var keptThrough = (long[])after.Clone();
        foreach (var change in kept) keptThrough[change.Partition] = change.Revision;
        for (var p = 0; p < heads.Length; p++)
        {
            // A partition cut by its page, or one of whose changes was left for the next read, ends where its kept changes end.
            if (lastRevision[p] < heads[p] || keptThrough[p] < lastRevision[p]) through[p] = keptThrough[p];
        }
        return new ChangeRange(kept, through, false);
    }

    /// <summary>
    /// Refuses a position the log cannot continue from: one naming another number of partitions
    /// (INVALID_ARGUMENT), one older than what the log retains, or one with a revision ahead of a
    /// partition's head, which this store's history as it stands never reached (OUT_OF_RANGE:
    /// the caller lists again). Each names the field that carries a position, resume_token.
    /// </summary>
    public static void RequireReadable(long[] after, long[] heads, long[] compacted)
    {
        if (after.Length != heads.Length)
        {
            throw ControlPlaneException.Invalid("resume_token", $"names {after.Length} partitions, the store has {heads.Length}");
        }
        for (var p = 0; p < heads.Length; p++)
        {
            if (after[p] < compacted[p])
            {
                throw new ControlPlaneException(ErrorCode.RevisionCompacted,
                    $"revision {after[p]} of partition {p} is older than the retained change log (compacted up to {compacted[p]}); list again", "resume_token");
            }
        }
        RequireNotAhead(after, heads, "resume_token");
    }

    /// <summary>
    /// Refuses a position with a revision ahead of a partition's head (OUT_OF_RANGE): not this
    /// store's history as it stands, which lost changes the position saw (restored from a backup,
    /// say). As for another store's token: list again. <paramref name="field"/> names the request
    /// field that carried it, if any.
    /// </summary>
    public static void RequireNotAhead(long[] after, long[] heads, string? field = null)
    {
        for (var p = 0; p < heads.Length && p < after.Length; p++)
        {
            if (after[p] > heads[p])
            {
                throw new ControlPlaneException(ErrorCode.RevisionCompacted,
                    $"revision {after[p]} of partition {p} is ahead of the store ({heads[p]}): the store no longer holds changes this token saw (was it restored from a backup?); list again", field);
            }
        }
    }
}
