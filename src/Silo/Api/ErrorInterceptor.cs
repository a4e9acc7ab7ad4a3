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
        // Grpc.AspNetCore sets no deadline at all for a timeout shorter than a tick (100 ns):
        // such a grpc-timeout ("1n", "99n") has passed on arrival too.
        var subTick = context.Deadline == DateTime.MaxValue && context.GetHttpContext().Request.Headers["grpc-timeout"].ToString() is { Length: >= 2 } timeout
            && timeout[^1] == 'n' && long.TryParse(timeout.AsSpan(0, timeout.Length - 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var nanoseconds)
            && nanoseconds < 100;
        if (subTick || (context.Deadline != DateTime.MaxValue && context.Deadline <= DateTime.UtcNow))
        {
            throw new RpcException(new Status(StatusCode.DeadlineExceeded, "the call's grpc-timeout passed before it was handled; nothing was done"));
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
        catch (Exception e) when (StatusMapping.Classify(e, context.CancellationToken.IsCancellationRequested) is { } status)
        {
            throw Classified(status);
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
