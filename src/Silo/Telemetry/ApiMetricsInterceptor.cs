using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Silo.Telemetry;

/// <summary>
/// The outermost interceptor: counts every call and its duration by method and status code
/// (controlplane.api.calls, controlplane.api.duration), and runs the call inside a server span of
/// <see cref="SiloTelemetry.ApiName"/> whose parent is the caller's traceparent, so the grain
/// call, the storage commit and the watch delivery of a write hang below it. The span exists only
/// when a tracer listens (OTLP export configured).
/// </summary>
public sealed class ApiMetricsInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var start = Stopwatch.GetTimestamp();
        using var activity = Start(context);
        try
        {
            var response = await continuation(request, context).ConfigureAwait(false);
            Done(context, start, activity, null);
            return response;
        }
        catch (Exception e)
        {
            Done(context, start, activity, e);
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        var start = Stopwatch.GetTimestamp();
        using var activity = Start(context);
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            Done(context, start, activity, null);
        }
        catch (Exception e)
        {
            Done(context, start, activity, e);
            throw;
        }
    }

    private static Activity? Start(ServerCallContext context)
    {
        if (!SiloTelemetry.Api.HasListeners()) return null;
        // ASP.NET Core's request activity (made for its logging scopes) is never exported: the API
        // span continues the caller's traceparent, or starts the trace.
        Activity.Current = null;
        var parent = Contracts.Hosting.Telemetry.ContextOf(context.RequestHeaders.GetValue("traceparent"));
        var activity = SiloTelemetry.Api.StartActivity(context.Method, ActivityKind.Server, parent);
        activity?.SetTag("rpc.system", "grpc");
        activity?.SetTag("rpc.method", context.Method);
        return activity;
    }

    private static void Done(ServerCallContext context, long start, Activity? activity, Exception? e)
    {
        var code = e is RpcException r ? r.StatusCode : e is null ? context.Status.StatusCode : e is OperationCanceledException ? StatusCode.Cancelled : StatusCode.Unknown;
        var tags = new TagList { { "method", context.Method }, { "code", CodeNames[(int)code & 31] } };
        SiloTelemetry.Calls.Add(1, tags);
        SiloTelemetry.Duration.Record(Stopwatch.GetElapsedTime(start).TotalSeconds, tags);
        if (activity is not null)
        {
            activity.SetTag("rpc.grpc.status_code", (int)code);
            // OpenTelemetry's RPC conventions: a server span is an error only for the server's own
            // failures; NOT_FOUND, INVALID_ARGUMENT and the like are answers.
            if (code is StatusCode.Unknown or StatusCode.DeadlineExceeded or StatusCode.Unimplemented or StatusCode.Internal
                or StatusCode.Unavailable or StatusCode.DataLoss) activity.SetStatus(ActivityStatusCode.Error, code.ToString());
        }
    }

    // Status names once, not a ToString per call.
    private static readonly string[] CodeNames = [.. Enumerable.Range(0, 32).Select(i => ((StatusCode)i).ToString())];
}
