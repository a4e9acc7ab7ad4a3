using ControlPlane.Contracts.Grpc;
using ControlPlane.Runtime.Errors;

namespace ControlPlane.Silo.Api;

/// <summary>Turns classified failures into gRPC statuses (ARCHITECTURE.md invariant 6).</summary>
public static class StatusMapping
{
    public static RpcException? Classify(Exception exception) => exception switch
    {
        ControlPlaneException e => new RpcException(ToStatus(e.Code), e.Message),
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
        _ => StatusCode.Internal,
    };
}
