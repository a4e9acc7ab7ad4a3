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

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
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
