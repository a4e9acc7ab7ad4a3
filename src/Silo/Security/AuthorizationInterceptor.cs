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
        if (AccessRules.NeedsStoredEndpoint(caller, context.Method) && EndpointNamedBy(request) is (string ns, string name))
        {
            var stored = await grains.Get<IEndpointGrain>(ResourceHandlers<Endpoint, IEndpointGrain>.KeyOf(ResourceKinds.Endpoint, ns, name)).GetAsync().ConfigureAwait(false);
            storedNode = stored.Spec?.Node;
            // An update naming another node than the stored one is refused anyway (a node is
            // fixed), but the denial names where the endpoint is. A delete is made conditional on
            // the revision read, so an endpoint replaced in between (on another node) is not
            // deleted: ABORTED.
            if (request is DeleteRequest delete && string.IsNullOrEmpty(delete.Etag)) delete.Etag = stored.Metadata.Etag;
        }
        if (AccessRules.Denial(caller, context.Method, request, storedNode) is { } denial)
        {
            throw new RpcException(new Status(StatusCode.PermissionDenied, denial));
        }
    }

    private static (string Namespace, string Name)? EndpointNamedBy(object? request) => request switch
    {
        Endpoint update => (update.Metadata?.Namespace ?? "", update.Metadata?.Name ?? ""),
        DeleteRequest delete => (delete.Namespace, delete.Name),
        _ => null,
    };
}
