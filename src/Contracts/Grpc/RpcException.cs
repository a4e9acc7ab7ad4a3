namespace ControlPlane.Contracts.Grpc;

/// <summary>A call that ended with a non-OK gRPC status, on either side of the wire.</summary>
public sealed class RpcException(StatusCode code, string detail) : Exception($"{code}: {detail}")
{
    /// <summary>The status sent in (or received from) the grpc-status trailer.</summary>
    public StatusCode StatusCode { get; } = code;

    /// <summary>The human-readable grpc-message.</summary>
    public string Detail { get; } = detail;
}
