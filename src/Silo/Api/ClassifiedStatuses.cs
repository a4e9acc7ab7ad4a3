using Grpc.Core;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Silo.Api;

/// <summary>
/// Marks the statuses chosen before any interceptor runs with the <see cref="ErrorInterceptor.ClassifiedTrailer"/>
/// too: a request that is not a valid message or is too large, an unknown method, a refused client
/// certificate, a rate limit, a request that is not gRPC at all. Those are trailers-only responses (the status travels in the headers),
/// so the mark is added as the headers go out. Left alone: OK, CANCELLED, and DEADLINE_EXCEEDED
/// without a mark, which is the caller's own grpc-timeout running out on the server, not an answer.
/// </summary>
public static class ClassifiedStatuses
{
    private static readonly Func<object, Task> Mark = state =>
    {
        var headers = ((HttpResponse)state).Headers;
        if (headers.TryGetValue("grpc-status", out var value) && int.TryParse(value, out var code)
            && (StatusCode)code is not (StatusCode.OK or StatusCode.Cancelled or StatusCode.DeadlineExceeded)
            && !headers.ContainsKey(ErrorInterceptor.ClassifiedTrailer))
        {
            headers[ErrorInterceptor.ClassifiedTrailer] = ((StatusCode)code).ToString();
        }
        return Task.CompletedTask;
    };

    /// <summary>
    /// Runs before every other middleware, so that it sees what they refuse too, whatever the
    /// request's content type: a call without one, or with application/json, is answered with a
    /// gRPC status as well (415, INTERNAL).
    /// </summary>
    public static void Use(WebApplication app) => app.Use((context, next) =>
    {
        context.Response.OnStarting(Mark, context.Response);
        return next(context);
    });
}
