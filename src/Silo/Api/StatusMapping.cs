using ControlPlane.Storage.Errors;
using Grpc.Core;
using Orleans.Runtime;
using Orleans.Storage;

namespace ControlPlane.Silo.Api;

/// <summary>
/// Turns classified failures into gRPC statuses (docs/ARCHITECTURE.md, "API"), in one place.
/// Messages are bounded: a status message travels in an HTTP/2 header, and one that echoes a
/// huge value would outgrow the client's header limit and jam its connection.
/// </summary>
public static class StatusMapping
{
    /// <summary>Longest status message sent, in characters.</summary>
    public const int MaxMessage = 1024;

    /// <summary>The status for an exception, or null when it is not a classified failure.</summary>
    /// <param name="callCancelled">The caller cancelled (or its deadline passed): a cancellation is then the caller's own.</param>
    /// <param name="write">The call changes state: a grain call that may have run before it failed then leaves its outcome unknown.</param>
    public static Status? Classify(Exception exception, bool callCancelled = false, bool write = false) => exception switch
    {
        ControlPlaneException e => new Status(ToStatus(e.Code), Bound(e.Message)),
        ClaimTakenException e => new Status(StatusCode.AlreadyExists, Bound(e.Message)),
        // The grain's view was stale (another activation wrote first): Orleans drops the activation.
        InconsistentStateException => new Status(StatusCode.Aborted, "the object changed concurrently; read it again and retry"),
        // The silo running the grain died, or the grain did not answer in time, after the call
        // was sent: the write may have been made. UNAVAILABLE would tell the client that nothing
        // happened and a retry is safe (a retried create would then hear ALREADY_EXISTS for its
        // own object); UNKNOWN says to read the object first.
        SiloUnavailableException when write =>
            new Status(StatusCode.Unknown, Bound($"the outcome is unknown: the object's grain went away during the call, so the write may have been made; read the object before trying again ({FirstLine(exception)})")),
        TimeoutException when write =>
            new Status(StatusCode.Unknown, Bound($"the outcome is unknown: the object's grain did not answer in time (busy with earlier calls, or its silo stalled), so the write may have been made; read the object before trying again ({FirstLine(exception)})")),
        SiloUnavailableException or OrleansMessageRejectionException or TimeoutException =>
            new Status(StatusCode.Unavailable, Bound($"the object's grain is unreachable: {FirstLine(exception)}")),
        // Cancelled inside the silo while the caller still waits: the runtime gave up on the call,
        // e.g. "message expired before placement could complete" while membership changes.
        OperationCanceledException when !callCancelled =>
            new Status(StatusCode.Unavailable, Bound($"the object's grain could not be reached in time: {FirstLine(exception)}")),
        _ => null,
    };

    public static StatusCode ToStatus(ErrorCode code) => code switch
    {
        ErrorCode.InvalidArgument => StatusCode.InvalidArgument,
        ErrorCode.NotFound => StatusCode.NotFound,
        ErrorCode.AlreadyExists => StatusCode.AlreadyExists,
        ErrorCode.FailedPrecondition => StatusCode.FailedPrecondition,
        ErrorCode.Aborted => StatusCode.Aborted,
        ErrorCode.ResourceExhausted => StatusCode.ResourceExhausted,
        ErrorCode.Unavailable => StatusCode.Unavailable,
        // Distinct from every other failure: the watcher must list again.
        ErrorCode.RevisionCompacted => StatusCode.OutOfRange,
        ErrorCode.DeadlineExceeded => StatusCode.DeadlineExceeded,
        _ => StatusCode.Internal,
    };

    /// <summary>
    /// The first line of the runtime's message: Orleans puts the inner exception, stack trace and
    /// all, into some of its messages, which say nothing a client can use and show its internals.
    /// </summary>
    private static string FirstLine(Exception exception)
    {
        var message = exception.Message;
        var end = message.AsSpan().IndexOfAny('\r', '\n');
        return (end < 0 ? message : message[..end]).TrimEnd();
    }

    public static string Bound(string message) =>
        message.Length <= MaxMessage ? message : string.Concat(message.AsSpan(0, MaxMessage), "…");
}
