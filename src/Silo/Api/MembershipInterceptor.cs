using ControlPlane.Contracts.V1;
using ControlPlane.Silo.Hosting;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Silo.Api;

/// <summary>
/// Admits calls through the <see cref="MembershipGuard"/> (several-silo clusters only): a call
/// waits while the silo checks that it is still a member after a pause, and a Get that spanned
/// a pause is answered UNAVAILABLE instead of from possibly stale memory. Writes need no second
/// check: the store refuses a write from a stale activation (the etag is the revision).
/// </summary>
public sealed class MembershipInterceptor(MembershipGuard guard) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var epoch = await guard.EnterAsync(context.CancellationToken).ConfigureAwait(false);
        var response = await continuation(request, context).ConfigureAwait(false);
        if (request is GetRequest)
        {
            guard.Confirm(epoch);
        }
        return response;
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await guard.EnterAsync(context.CancellationToken).ConfigureAwait(false);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }
}
