using System.Diagnostics;
using Grpc.AspNetCore.Server;
using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;

namespace ControlPlane.Silo.Telemetry;

/// <summary>
/// Counts every gRPC call the API answers (controlplane.api.calls, controlplane.api.duration) by
/// method and the status the client received, read from the response itself: also the calls
/// refused before any interceptor runs (a refused client certificate, a rate limit, an
/// undecodable or oversized request, an unknown method) and a write answered INTERNAL because it
/// could not be audited. Unknown methods count under method "unknown", so clients cannot add label
/// values; a call the client reset counts as CANCELLED, or DEADLINE_EXCEEDED past its deadline.
/// </summary>
public static class ApiCallMetrics
{
    private const string Unknown = "unknown";

    // Status names once, not a ToString per call.
    private static readonly string[] CodeNames = [.. Enumerable.Range(0, 32).Select(i => ((StatusCode)i).ToString())];

    /// <summary>Runs first, so that it sees what every later middleware answers.</summary>
    public static void Use(WebApplication app) => app.Use(async (context, next) =>
    {
        if (context.Request.ContentType?.StartsWith("application/grpc", StringComparison.Ordinal) != true)
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var start = Stopwatch.GetTimestamp();
        try
        {
            await next(context).ConfigureAwait(false);
        }
        finally
        {
            Count(context, start);
        }
    });

    private static void Count(HttpContext context, long start)
    {
        var code = StatusOf(context);
        var method = code == StatusCode.Unimplemented ? Unknown : context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>()?.Method.FullName ?? Unknown;
        var tags = new TagList { { "method", method }, { "code", CodeNames[(int)code & 31] } };
        SiloTelemetry.Calls.Add(1, tags);
        SiloTelemetry.Duration.Record(Stopwatch.GetElapsedTime(start).TotalSeconds, tags);
    }

    /// <summary>
    /// The grpc-status sent: in the trailers, or in the headers of a trailers-only response. A
    /// call the client reset (it cancelled, or its deadline passed) got no status; Grpc.AspNetCore
    /// still fills in UNKNOWN for the cancellation that ended the handler. Such a call counts as
    /// DEADLINE_EXCEEDED when its deadline has passed, else CANCELLED, as the client saw it.
    /// </summary>
    private static StatusCode StatusOf(HttpContext context)
    {
        var sent = context.Features.Get<IHttpResponseTrailersFeature>()?.Trailers.GrpcStatus is { Count: > 0 } trailer ? trailer : context.Response.Headers.GrpcStatus;
        var status = int.TryParse(sent.ToString(), System.Globalization.NumberStyles.None, null, out var code) && code is >= 0 and < 32 ? (StatusCode)code : StatusCode.Unknown;
        // Only then is the abort read (the common path does not create Kestrel's abort token).
        if (status == StatusCode.Unknown && context.RequestAborted.IsCancellationRequested)
        {
            var deadline = context.Features.Get<IServerCallContextFeature>()?.ServerCallContext.Deadline ?? DateTime.MaxValue;
            return deadline <= DateTime.UtcNow ? StatusCode.DeadlineExceeded : StatusCode.Cancelled;
        }
        return status;
    }
}
