using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Silo.Api;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Silo.Security;

/// <summary>
/// Checks every call against <see cref="AccessRules"/> before it runs: a forbidden call is
/// PERMISSION_DENIED naming the role and the rule, and changes nothing. Without TLS every caller is
/// admin, so this lets everything through.
/// </summary>
public sealed class AuthorizationInterceptor(IGrainFactory grains) : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context, request).ConfigureAwait(false);
        return await continuation(request, context).ConfigureAwait(false);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context, request).ConfigureAwait(false);
        await continuation(request, responseStream, context).ConfigureAwait(false);
    }

    public override async Task<TResponse> ClientStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        ServerCallContext context, ClientStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context, null).ConfigureAwait(false);
        return await continuation(requestStream, context).ConfigureAwait(false);
    }

    public override async Task DuplexStreamingServerHandler<TRequest, TResponse>(IAsyncStreamReader<TRequest> requestStream,
        IServerStreamWriter<TResponse> responseStream, ServerCallContext context, DuplexStreamingServerMethod<TRequest, TResponse> continuation)
    {
        await CheckAsync(context, null).ConfigureAwait(false);
        await continuation(requestStream, responseStream, context).ConfigureAwait(false);
    }

    private async Task CheckAsync(ServerCallContext context, object? request)
    {
        var caller = Caller.Of(context);
        string? storedNode = null;
        if (AccessRules.NeedsStoredEndpoint(caller, context.Method) && request is Endpoint update)
        {
            // The update is refused anyway if it names another node than the stored one (a node
            // is fixed), but the denial names where the endpoint is.
            var key = ResourceHandlers<Endpoint, IEndpointGrain>.KeyOf(ResourceKinds.Endpoint, update.Metadata?.Namespace ?? "", update.Metadata?.Name ?? "");
            storedNode = (await grains.Get<IEndpointGrain>(key).GetAsync().ConfigureAwait(false)).Spec?.Node;
        }
        else if (AccessRules.NeedsStoredEndpoint(caller, context.Method) && request is DeleteRequest delete)
        {
            // The node is that of the endpoint as stored; the delete is made conditional on that
            // revision, so an endpoint replaced in between (on another node) is not deleted: ABORTED.
            var key = ResourceHandlers<Endpoint, IEndpointGrain>.KeyOf(ResourceKinds.Endpoint, delete.Namespace, delete.Name);
            var stored = await grains.Get<IEndpointGrain>(key).GetAsync().ConfigureAwait(false);
            storedNode = stored.Spec?.Node;
            if (string.IsNullOrEmpty(delete.Etag)) delete.Etag = stored.Metadata.Etag;
        }
        if (AccessRules.Denial(caller, context.Method, request, storedNode) is { } denial)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, denial));
        }
    }
}
