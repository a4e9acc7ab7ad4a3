using Grpc.Core;

namespace ControlPlane.Contracts.Client;

/// <summary>Call options the way the project's clients use them.</summary>
public static class Calls
{
    /// <summary>A call that must finish within <paramref name="timeout"/> (sent as grpc-timeout).</summary>
    public static CallOptions Within(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        new(deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken);

    public static CallOptions Until(CancellationToken cancellationToken) => new(cancellationToken: cancellationToken);

    /// <summary>The trailer the control plane sets on every status it chose (its value: the status code).</summary>
    public const string ClassifiedTrailer = "cp-classified";

    /// <summary>
    /// True when the server chose this status (for example DEADLINE_EXCEEDED from a wait that ran
    /// out), not the transport or the client's own deadline.
    /// </summary>
    public static bool IsClassified(RpcException e) => e.Trailers.Get(ClassifiedTrailer) is not null;
}
