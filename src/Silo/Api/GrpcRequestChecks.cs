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
/// <item>A message length of 2^31 or more (see <see cref="Prefix"/>) is RESOURCE_EXHAUSTED, as a
/// shorter one over the limit is, not an UNKNOWN with a logged stack trace. An uncompressed
/// message over the limit is refused here too, naming its length and the limit: Grpc.AspNetCore
/// says only that it "exceeds the maximum configured message size". (A compressed one is left
/// to it: only the decompressed length counts.)</item>
/// <item>A call is a POST. Another method with a gRPC content-type (a GET) ran the handler, which
/// answered INTERNAL "Incomplete message"; it is HTTP 405 with INTERNAL naming the method, as
/// grpc-go answers it.</item>
/// <item>The content-type's codec is protobuf: <c>application/grpc</c> or <c>application/grpc+proto</c>.
/// Another subtype (<c>application/grpc+json</c>) is UNIMPLEMENTED naming it, where Grpc.AspNetCore
/// would read the body as protobuf anyway.</item>
/// </list>
/// </summary>
public static class GrpcRequestChecks
{
    public static void Use(WebApplication app, int maxReceiveMessageSize) => app.Use(async (context, next) =>
    {
        if (!IsGrpc(context.Request.ContentType, out var subtype))
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        if (subtype.Length > 0 && !subtype.Equals("proto", StringComparison.OrdinalIgnoreCase))
        {
            await TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.Unimplemented, StatusCodes.Status415UnsupportedMediaType,
                $"content-type {Storage.Errors.ControlPlaneException.Quote(context.Request.ContentType!)} is not served: messages are protobuf (application/grpc or application/grpc+proto)").ConfigureAwait(false);
            return;
        }
        if (!HttpMethods.IsPost(context.Request.Method))
        {
            await TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.Internal, StatusCodes.Status405MethodNotAllowed,
                $"invalid gRPC request method {Storage.Errors.ControlPlaneException.Quote(context.Request.Method)}: gRPC calls are POST", httpStatusForGrpc: true).ConfigureAwait(false);
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
        var (flag, length) = Prefix(read.Buffer);
        reader.AdvanceTo(read.Buffer.Start);
        if (flag > 1)
        {
            await TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.Internal, StatusCodes.Status400BadRequest,
                $"the message's compressed flag is {flag}; a gRPC frame's flag is 0 or 1").ConfigureAwait(false);
            return;
        }
        if (length > int.MaxValue || (flag == 0 && length > maxReceiveMessageSize))
        {
            await TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.ResourceExhausted, StatusCodes.Status200OK,
                $"the request message is {length} bytes; this server receives at most {maxReceiveMessageSize} (Silo:MaxReceiveMessageSize)").ConfigureAwait(false);
            return;
        }
        await next(context).ConfigureAwait(false);
    });

    /// <summary>
    /// The first message's compressed flag (0 when nothing has arrived) and its length (0 until its
    /// 5-byte prefix has arrived). A length of 2^31 or more is refused here: Grpc.AspNetCore throws
    /// it out of the handler as UNKNOWN, logging a stack trace per request, where a length up to
    /// that is RESOURCE_EXHAUSTED. A prefix split over several reads is left to it (checking that
    /// would mean consuming the body).
    /// </summary>
    private static (byte Flag, uint Length) Prefix(in System.Buffers.ReadOnlySequence<byte> buffer)
    {
        if (buffer.IsEmpty) return (0, 0);
        if (buffer.Length < 5) return (buffer.FirstSpan[0], 0);
        Span<byte> prefix = stackalloc byte[5];
        System.Buffers.BuffersExtensions.CopyTo(buffer.Slice(0, 5), prefix);
        return (prefix[0], System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(prefix[1..]));
    }

    /// <summary>
    /// Whether a content-type is gRPC's: <c>application/grpc</c>, then the end, <c>;</c> parameters
    /// or <c>+</c> and a codec subtype (returned, empty when none); <c>application/grpc-web</c> is not.
    /// </summary>
    public static bool IsGrpc(string? contentType, out ReadOnlySpan<char> subtype)
    {
        const string Grpc = "application/grpc";
        subtype = default;
        if (contentType is null || !contentType.StartsWith(Grpc, StringComparison.OrdinalIgnoreCase)) return false;
        var rest = contentType.AsSpan(Grpc.Length);
        if (rest.IsEmpty || rest[0] == ';') return true;
        if (rest[0] != '+') return false;
        var end = rest.IndexOf(';');
        subtype = (end < 0 ? rest[1..] : rest[1..end]).Trim();
        return true;
    }
}
