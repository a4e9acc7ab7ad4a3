using System.Diagnostics;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Silo.Telemetry;

/// <summary>
/// Runs every call inside a server span of <see cref="SiloTelemetry.ApiName"/> whose parent is the
/// caller's traceparent, so the grain call, the storage commit and the watch delivery of a write
/// hang below it. The span exists only when a tracer listens (OTLP export configured). Calls are
/// counted by <see cref="ApiCallMetrics"/>, which also sees those refused before any interceptor.
/// </summary>
public sealed class ApiTracingInterceptor : Interceptor
{
    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        using var activity = Start(context);
        if (activity is null) return await continuation(request, context).ConfigureAwait(false);
        try
        {
            var response = await continuation(request, context).ConfigureAwait(false);
            Done(context, activity, null);
            return response;
        }
        catch (Exception e)
        {
            Done(context, activity, e);
            throw;
        }
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        using var activity = Start(context);
        if (activity is null)
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            return;
        }
        try
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            Done(context, activity, null);
        }
        catch (Exception e)
        {
            Done(context, activity, e);
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

    private static void Done(ServerCallContext context, Activity activity, Exception? e)
    {
        var code = e is RpcException r ? r.StatusCode : e is null ? context.Status.StatusCode : e is OperationCanceledException ? StatusCode.Cancelled : StatusCode.Unknown;
        activity.SetTag("rpc.grpc.status_code", (int)code);
        // OpenTelemetry's RPC conventions: a server span is an error only for the server's own
        // failures; NOT_FOUND, INVALID_ARGUMENT and the like are answers.
        if (code is StatusCode.Unknown or StatusCode.DeadlineExceeded or StatusCode.Unimplemented or StatusCode.Internal
            or StatusCode.Unavailable or StatusCode.DataLoss) activity.SetStatus(ActivityStatusCode.Error, code.ToString());
    }
}
