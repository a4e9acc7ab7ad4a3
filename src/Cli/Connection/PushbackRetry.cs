using System.Globalization;
using Google.Protobuf;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Cli.Connection;

/// <summary>
/// Waits out a server's retry pushback and makes the call again (gRFC A6's server pushback). The
/// silos' per-client rate limit (<c>Limits:RequestsPerSecond</c>, the silo's LimitsInterceptor)
/// refuses a call RESOURCE_EXHAUSTED before any handler has run, saying how long to wait in the
/// trailer <c>grpc-retry-pushback-ms</c> and in a google.rpc.RetryInfo: such a call was never
/// executed, so making it again is safe, a write too. It is made again after each pause the
/// server asks for, as long as the pause ends before the call's deadline (--timeout): one call's
/// attempts and pauses together never outlast it, and a pause that would is not waited (the
/// refusal is the answer, saying so).
/// </summary>
/// <remarks>
/// Reads (Get, GetInfo, List, Explain, WaitProgrammed, Status) are repeated after any pushback; a
/// write only when the refusal also says it is the control plane's rate limit (ErrorInfo
/// <c>RATE_LIMITED</c> of domain <c>controlplane.v1</c>), since another server or proxy could send
/// a pushback after doing part of the work. RESOURCE_EXHAUSTED without a pushback (an address pool
/// that is empty, a message too large) is the answer at once. Streams (watch) are not repeated
/// here: the watch command resumes its own stream after the pause (<see cref="Pushback"/>).
/// </remarks>
internal sealed class PushbackRetry : Interceptor
{
    public const string PushbackTrailer = "grpc-retry-pushback-ms";

    private static readonly HashSet<string> Reads = new(StringComparer.Ordinal) { "Get", "GetInfo", "List", "Watch", "Explain", "WaitProgrammed", "Status" };

    /// <summary>A pause of 0 ms is waited this long, so that a server answering 0 cannot make a busy loop.</summary>
    private static readonly TimeSpan ShortestPause = TimeSpan.FromMilliseconds(10);

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
        AsyncUnaryCallContinuation<TRequest, TResponse> continuation)
    {
        var attempts = new Attempts<TResponse>();
        var response = attempts.RunAsync(() => continuation(request, context), context.Method.Name, context.Options);
        return new AsyncUnaryCall<TResponse>(response, attempts.HeadersAsync, attempts.GetStatus, attempts.GetTrailers, attempts.Dispose);
    }

    /// <summary>
    /// How long the server asked the caller of <paramref name="method"/> (its short name, "Create")
    /// to wait before trying again, or null when this refusal is not to be repeated.
    /// </summary>
    public static TimeSpan? Pushback(RpcException e, string method)
    {
        if (e.StatusCode != StatusCode.ResourceExhausted) return null;
        Google.Rpc.Status? details;
        try
        {
            details = e.GetRpcStatus();
        }
        catch (InvalidProtocolBufferException)
        {
            details = null;
        }
        if (!Reads.Contains(method) && details?.GetDetail<ErrorInfo>() is not { Domain: "controlplane.v1", Reason: "RATE_LIMITED" }) return null;
        TimeSpan pause;
        if (e.Trailers.GetValue(PushbackTrailer) is { } text)
        {
            // gRFC A6: a pushback that is not a whole number of milliseconds means "do not retry".
            if (!long.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out var milliseconds)) return null;
            pause = TimeSpan.FromMilliseconds(milliseconds);
        }
        else if (details?.GetDetail<RetryInfo>()?.RetryDelay is { } delay && delay.ToTimeSpan() >= TimeSpan.Zero)
        {
            pause = delay.ToTimeSpan();
        }
        else
        {
            return null;
        }
        return pause < ShortestPause ? ShortestPause : pause;
    }

    /// <summary>One unary call, made again after each pushback while its deadline allows.</summary>
    private sealed class Attempts<TResponse>
    {
        private readonly TaskCompletionSource<Metadata> _headers = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private AsyncUnaryCall<TResponse>? _last;

        public Task<Metadata> HeadersAsync => _headers.Task;

        public async Task<TResponse> RunAsync(Func<AsyncUnaryCall<TResponse>> start, string method, CallOptions options)
        {
            while (true)
            {
                var call = start();
                Volatile.Write(ref _last, call);
                TimeSpan pause;
                try
                {
                    var response = await call.ResponseAsync.ConfigureAwait(false);
                    _headers.TrySetResult(await call.ResponseHeadersAsync.ConfigureAwait(false));
                    return response;
                }
                catch (RpcException e) when (Pushback(e, method) is { } asked)
                {
                    pause = asked;
                    if (options.Deadline is { } deadline && DateTime.UtcNow + pause >= deadline)
                    {
                        _headers.TrySetResult(new Metadata());
                        throw new RpcException(new Grpc.Core.Status(e.StatusCode,
                            $"{e.Status.Detail}; not retried: the call's deadline (--timeout) comes first", e.Status.DebugException), e.Trailers);
                    }
                }
                catch
                {
                    _headers.TrySetResult(call.ResponseHeadersAsync.IsCompletedSuccessfully ? call.ResponseHeadersAsync.Result : new Metadata());
                    throw;
                }
                call.Dispose();
                await Task.Delay(pause, options.CancellationToken).ConfigureAwait(false);
            }
        }

        public Grpc.Core.Status GetStatus() => Volatile.Read(ref _last) is { } call ? call.GetStatus() : throw new InvalidOperationException("the call has not started");

        public Metadata GetTrailers() => Volatile.Read(ref _last) is { } call ? call.GetTrailers() : throw new InvalidOperationException("the call has not started");

        public void Dispose() => Volatile.Read(ref _last)?.Dispose();
    }
}
