using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Server.Kestrel.Core;

namespace ControlPlane.Silo.Api;

/// <summary>
/// Oversized request metadata is refused on its own call, RESOURCE_EXHAUSTED with its size and
/// the limit, as gRPC's own servers do. Kestrel's limits would refuse it for the whole connection
/// instead: a header field larger than its HPACK limit is a connection error that fails every call
/// sharing the connection (a watch included), and headers over its total get HTTP 431, which gRPC
/// clients can only read as UNKNOWN. Kestrel's limits are therefore set far above this one
/// (<see cref="Configure"/>), and this middleware enforces the real limit per call.
/// </summary>
public static class RequestMetadataLimit
{
    /// <summary>The most request metadata a call may carry, counted as HTTP/2 does (name + value + 32 per field).</summary>
    public const int MaxBytes = 32 * 1024;

    /// <summary>The most fields a call may carry.</summary>
    public const int MaxFields = 100;

    /// <summary>
    /// Kestrel's own limits, beyond which a request never reaches <see cref="Use"/>: a total 8
    /// times ours (still a stream-level refusal), a field far larger, so that no field below the
    /// total ends the connection.
    /// </summary>
    public static void Configure(KestrelServerLimits limits)
    {
        limits.MaxRequestHeadersTotalSize = 8 * MaxBytes;
        // Fields are small: the total bounds them long before this count does.
        limits.MaxRequestHeaderCount = 100 * MaxFields;
        limits.Http2.MaxRequestHeaderFieldSize = 1024 * 1024;
    }

    public static void Use(WebApplication app) => app.Use((context, next) =>
    {
        var size = 0;
        var fields = 0;
        foreach (var (name, values) in context.Request.Headers)
        {
            foreach (var value in values)
            {
                size += name.Length + (value?.Length ?? 0) + 32;
                fields++;
            }
        }
        if (size <= MaxBytes && fields <= MaxFields)
        {
            return next(context);
        }
        var what = size > MaxBytes ? $"request metadata is {size} bytes; at most {MaxBytes} are accepted" : $"request metadata has {fields} fields; at most {MaxFields} are accepted";
        return TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.ResourceExhausted, StatusCodes.Status431RequestHeaderFieldsTooLarge, what);
    });
}
