using ControlPlane.Storage.Errors;

namespace ControlPlane.Storage;

/// <summary>Changes read from the log after a position, with the heads they were read at.</summary>
public sealed record ChangeRange(IReadOnlyList<Change> Changes, long[] Heads)
{
    /// <summary>
    /// Refuses a position the log cannot continue from: one naming another number of partitions
    /// or a revision ahead of a partition's head (INVALID_ARGUMENT), or one older than what the
    /// log retains (OUT_OF_RANGE: the caller lists again).
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
                    $"revision {after[p]} of partition {p} is older than the retained change log (compacted up to {compacted[p]}); list again");
            }
            if (after[p] > heads[p])
            {
                throw ControlPlaneException.Invalid("resume_token", $"revision {after[p]} of partition {p} is ahead of the store ({heads[p]})");
            }
        }
    }
}
