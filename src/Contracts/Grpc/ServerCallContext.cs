using Microsoft.AspNetCore.Http;

namespace ControlPlane.Contracts.Grpc;

/// <summary>What a server-side handler knows about the call it serves.</summary>
public sealed class ServerCallContext(HttpContext httpContext, string method, DateTime? deadline, CancellationToken cancellationToken)
{
    /// <summary>The full method path, "/package.Service/Method".</summary>
    public string Method { get; } = method;

    /// <summary>UTC instant after which the caller no longer waits, from grpc-timeout.</summary>
    public DateTime? Deadline { get; } = deadline;

    /// <summary>Cancelled when the client goes away, the deadline passes or the server stops.</summary>
    public CancellationToken CancellationToken { get; } = cancellationToken;

    public HttpContext HttpContext { get; } = httpContext;
}
