namespace ControlPlane.Contracts.Grpc;

/// <summary>Per-call options: a deadline (sent as grpc-timeout) and cancellation.</summary>
public readonly record struct CallOptions(TimeSpan? Timeout = null, CancellationToken CancellationToken = default);
