using System.Globalization;
using System.Text;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Silo.Api;

/// <summary>
/// A gRPC status answered by middleware before any service runs: a trailers-only response (HTTP
/// 200, the status in the headers), or a plain HTTP status for a caller that is not speaking gRPC.
/// </summary>
public static class TrailersOnly
{
    /// <summary>
    /// Answers <paramref name="code"/> to a gRPC caller (with HTTP 200, or with
    /// <paramref name="httpStatus"/> too when <paramref name="httpStatusForGrpc"/>), else
    /// <paramref name="httpStatus"/> with the message as text.
    /// </summary>
    public static Task RefuseAsync(HttpContext context, Grpc.Core.StatusCode code, int httpStatus, string message, bool httpStatusForGrpc = false)
    {
        var response = context.Response;
        if (!GrpcRequestChecks.IsGrpc(context.Request.ContentType, out _))
        {
            response.StatusCode = httpStatus;
            return response.WriteAsync(message + "\n");
        }
        response.StatusCode = httpStatusForGrpc ? httpStatus : StatusCodes.Status200OK;
        response.ContentType = "application/grpc";
        response.Headers["grpc-status"] = ((int)code).ToString(CultureInfo.InvariantCulture);
        response.Headers["grpc-message"] = PercentEncode(message);
        return Task.CompletedTask;
    }

    /// <summary>grpc-message encoding: bytes outside printable ASCII, and '%', as %XX.</summary>
    private static string PercentEncode(string text)
    {
        var builder = new StringBuilder();
        foreach (var b in Encoding.UTF8.GetBytes(text))
        {
            if (b is >= 0x20 and <= 0x7e && b != (byte)'%') builder.Append((char)b);
            else builder.Append('%').Append(b.ToString("X2", CultureInfo.InvariantCulture));
        }
        return builder.ToString();
    }
}
