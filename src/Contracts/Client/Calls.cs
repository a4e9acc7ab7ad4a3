using Grpc.Core;

namespace ControlPlane.Contracts.Client;

/// <summary>Call options the way the project's clients use them.</summary>
public static class Calls
{
    /// <summary>A call that must finish within <paramref name="timeout"/> (sent as grpc-timeout).</summary>
    public static CallOptions Within(TimeSpan timeout, CancellationToken cancellationToken = default) =>
        new(deadline: DateTime.UtcNow + timeout, cancellationToken: cancellationToken);

    public static CallOptions Until(CancellationToken cancellationToken) => new(cancellationToken: cancellationToken);
}
