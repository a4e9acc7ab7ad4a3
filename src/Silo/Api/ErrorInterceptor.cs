using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Silo.Api;

/// <summary>
/// Every call's failure becomes its classified status (see <see cref="StatusMapping"/>). The
/// trailer <see cref="ClassifiedTrailer"/> marks a status the server chose, so that a client can
/// tell a server's DEADLINE_EXCEEDED (a wait that ran out) from its own deadline passing.
/// </summary>
public sealed class ErrorInterceptor : Interceptor
{
    public const string ClassifiedTrailer = Contracts.Client.Calls.ClassifiedTrailer;

    private static RpcException Classified(Status status) => new(status, new Metadata { { ClassifiedTrailer, status.StatusCode.ToString() } });

    /// <summary>
    /// A call whose grpc-timeout has already passed when it arrives (say "1n") is not handled at
    /// all: the caller has given up on its answer, so nothing may change on its behalf.
    /// </summary>
    private static void RequireTimeLeft(ServerCallContext context)
    {
        var header = context.GetHttpContext().Request.Headers["grpc-timeout"];
        if (header.Count == 0) return;
        // Grpc.AspNetCore ignores a grpc-timeout it cannot read and runs the call with no
        // deadline: refuse it instead (the caller counts on a deadline the server would not keep).
        var timeout = header.Count == 1 ? header[0] ?? string.Empty : string.Empty;
        if (!Timeout.TryParse(timeout, out var subTick))
        {
            throw Classified(new Status(StatusCode.Internal,
                $"grpc-timeout: {Storage.Errors.ControlPlaneException.Quote(header.ToString())} is not a timeout (1 to 8 digits, then H, M, S, m, u or n)"));
        }
        // Grpc.AspNetCore sets no deadline at all for a timeout of zero or shorter than a tick
        // (100 ns): such a grpc-timeout ("0S", "1n", "99n") has passed on arrival too.
        if (subTick || (context.Deadline != DateTime.MaxValue && context.Deadline <= DateTime.UtcNow))
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, "the call's grpc-timeout passed before it was handled; nothing was done"));
        }
    }

    /// <summary>The gRPC HTTP/2 protocol's <c>grpc-timeout</c>: at most 8 digits and a unit.</summary>
    private static class Timeout
    {
        public static bool TryParse(string value, out bool subTick)
        {
            subTick = false;
            if (value.Length is < 2 or > 9 || "HMSmun".IndexOf(value[^1], StringComparison.Ordinal) < 0) return false;
            var digits = value.AsSpan(0, value.Length - 1);
            foreach (var c in digits)
            {
                if (c is < '0' or > '9') return false;
            }
            // Zero in any unit, or nanoseconds short of a tick.
            var amount = long.Parse(digits, System.Globalization.CultureInfo.InvariantCulture);
            subTick = amount == 0 || (value[^1] == 'n' && amount < 100);
            return true;
        }
    }

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        RequireTimeLeft(context);
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (Exception e) when (StatusMapping.Classify(e, context.CancellationToken.IsCancellationRequested, !Security.AccessRules.IsRead(context.Method)) is { } status)
        {
            throw Classified(status);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && e.Status.Detail.Length == 0 && request is Grpc.Health.V1.HealthCheckRequest check)
        {
            // grpc.health.v1 answers a service it does not know with a bare NOT_FOUND: say which, and what is known.
            throw Classified(new Status(StatusCode.NotFound,
                $"service: {Storage.Errors.ControlPlaneException.Quote(check.Service)} has no health status here; ask for \"\" (the server as a whole) or one of the controlplane.v1 services"));
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        RequireTimeLeft(context);
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
        catch (Exception e) when (StatusMapping.Classify(e, context.CancellationToken.IsCancellationRequested) is { } status)
        {
            throw Classified(status);
        }
    }
}
