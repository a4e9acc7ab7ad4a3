namespace ControlPlane.Storage.Errors;

/// <summary>
/// The classes of failure a caller must tell apart. They map one-to-one onto gRPC status codes
/// at the API edge; nothing ever branches on an exception's message text.
/// </summary>
public enum ErrorCode
{
    InvalidArgument,
    NotFound,
    AlreadyExists,
    FailedPrecondition,
    /// <summary>An etag (revision) did not match: the caller's view is stale.</summary>
    Aborted,
    ResourceExhausted,
    /// <summary>The store is down, or this silo lost ownership of the partition (fencing).</summary>
    Unavailable,
    /// <summary>A watch asked for a revision the change log no longer holds: list again.</summary>
    RevisionCompacted,
    /// <summary>A wait ran out of time before what it waited for happened.</summary>
    DeadlineExceeded,
}
