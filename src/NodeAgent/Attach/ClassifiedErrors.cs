using ControlPlane.Contracts.Client;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.NodeAgent.Attach;

/// <summary>
/// Marks every status the agent chose with the trailer the silo puts on its own
/// (<see cref="Calls.ClassifiedTrailer"/>): its refusals of an attach (a missing network namespace,
/// a bad interface name) and its "the control plane is unreachable" answer, as well as the silo's
/// refusals it relays (already marked). So a client tells the agent's answer from a connection
/// that failed. The caller's own deadline or cancellation is not marked.
/// </summary>
public sealed class ClassifiedErrors : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        try
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        catch (RpcException e) when (!context.CancellationToken.IsCancellationRequested && !Calls.IsClassified(e))
        {
            var trailers = new Metadata();
            foreach (var entry in e.Trailers) trailers.Add(entry);
            trailers.Add(Calls.ClassifiedTrailer, e.StatusCode.ToString());
            throw new RpcException(e.Status, trailers);
        }
    }
}
