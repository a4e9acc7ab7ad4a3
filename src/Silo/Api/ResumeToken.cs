using ControlPlane.Contracts.Client;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Silo.Api;

/// <summary>
/// The opaque position of a watcher: the identity of the store that issued it and one revision
/// per partition (<see cref="WatchPosition"/> has the format). Clients store it and send it back;
/// they never compute with it. A token of another store (a data directory or database replaced
/// since) names revisions of another history: it is refused as OUT_OF_RANGE, which tells a
/// client to list again, like a compacted one. Version 1 tokens (issued before stores had an
/// identity) carry no id and are still read.
/// </summary>
public static class ResumeToken
{
    public static string Encode(ulong store, ReadOnlySpan<long> revisions)
    {
        Span<byte> buffer = stackalloc byte[MaxEncodedLength(revisions.Length)];
        var n = EncodeUtf8(store, revisions, buffer);
        return System.Text.Encoding.ASCII.GetString(buffer[..n]);
    }

    /// <summary>Upper bound of the encoded length for a number of partitions.</summary>
    public static int MaxEncodedLength(int partitions) => WatchPosition.MaxEncodedLength(partitions);

    /// <summary>Writes the token as ASCII into <paramref name="destination"/> (no allocation); returns its length.</summary>
    public static int EncodeUtf8(ulong store, ReadOnlySpan<long> revisions, Span<byte> destination) =>
        WatchPosition.EncodeUtf8(store, revisions, destination);

    /// <summary>
    /// The revisions of a token issued by <paramref name="store"/>: INVALID_ARGUMENT naming
    /// <paramref name="field"/> when it is malformed, OUT_OF_RANGE when another store issued it.
    /// </summary>
    public static long[] Decode(string token, ulong store, int partitionCount, string field = "resume_token")
    {
        var outcome = WatchPosition.TryRead(token, out var issuer, out var revisions);
        if (outcome == WatchPosition.Outcome.Corrupt)
        {
            throw ControlPlaneException.Invalid(field, "is not a token this server issued: it does not decode (cut short, extended or altered?)");
        }
        if (outcome == WatchPosition.Outcome.Foreign)
        {
            throw ControlPlaneException.Invalid(field, "is not a token this server issued");
        }
        if (revisions.Length != partitionCount)
        {
            throw ControlPlaneException.Invalid(field,
                $"is not a token this server issued: it holds {revisions.Length} partition positions, this store has {partitionCount} (cut short, extended or altered?)");
        }
        if (issuer is { } id && id != store)
        {
            throw new ControlPlaneException(ErrorCode.RevisionCompacted,
                $"{field} was issued by another store (its data was replaced since); list again");
        }
        return revisions;
    }
}
