using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace ControlPlane.Silo.Api;

/// <summary>
/// What Grpc.AspNetCore leaves to ASP.NET Core and gRPC does not:
/// <list type="bullet">
/// <item>Method names are exact. Routing matches paths regardless of case and of a trailing slash
/// or query, so <c>/CONTROLPLANE.V1.ENDPOINTS/GET/</c> ran Get (and the audit log recorded what
/// the path said). Any path that is not a method's exactly is UNIMPLEMENTED.</item>
/// <item>A message's compressed flag is 0 or 1: any other first byte is a broken frame, INTERNAL
/// (Grpc.AspNetCore throws it out of the handler as UNKNOWN). The flag is read without being
/// consumed.</item>
/// </list>
/// </summary>
public static class GrpcRequestChecks
{
    public static void Use(WebApplication app) => app.Use(async (context, next) =>
    {
        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var path = context.Request.Path.Value ?? string.Empty;
        if (context.GetEndpoint() is RouteEndpoint { RoutePattern.RawText: { } method }
            && (!string.Equals(method, path, StringComparison.Ordinal) || context.Request.QueryString.HasValue))
        {
            await TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.Unimplemented, StatusCodes.Status404NotFound,
                $"{Storage.Errors.ControlPlaneException.Quote(path + context.Request.QueryString)} is no method: gRPC method names are exact (case, no trailing slash or query)").ConfigureAwait(false);
            return;
        }
        var reader = context.Request.BodyReader;
        // The first frame has usually arrived with the headers: no wait then.
        if (!reader.TryRead(out var read)) read = await reader.ReadAsync(context.RequestAborted).ConfigureAwait(false);
        var flag = read.Buffer.IsEmpty ? (byte)0 : read.Buffer.FirstSpan[0];
        reader.AdvanceTo(read.Buffer.Start);
        if (flag > 1)
        {
            await TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.Internal, StatusCodes.Status400BadRequest,
                $"the message's compressed flag is {flag}; a gRPC frame's flag is 0 or 1").ConfigureAwait(false);
            return;
        }
        await next(context).ConfigureAwait(false);
    });
}
