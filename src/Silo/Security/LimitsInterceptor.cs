using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Google.Rpc;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Silo.Security;

/// <summary>
/// Applies the per-client limits of <see cref="ClientLimiter"/>: every call takes a token from
/// its client's bucket, and a Watch also takes one of the client's watch slots until its stream
/// ends. A refusal is RESOURCE_EXHAUSTED naming the limit and the client, with the trailer
/// <c>grpc-retry-pushback-ms</c> and a google.rpc.Status in <c>grpc-status-details-bin</c>
/// (RetryInfo, QuotaFailure, ErrorInfo). Not limited: health and reflection, and the
/// unauthenticated local admin on the silo's unix socket ("peer:local"): reaching that socket
/// takes the host's file permissions already, and every process of the host would share its key;
/// and the silo's own calls (<see cref="InternalCaller"/>: its embedded DNS server's feed).
/// </summary>
public sealed class LimitsInterceptor(ClientLimiter limiter, InternalCaller? self = null) : Interceptor
{
    public const string RetryPushbackTrailer = "grpc-retry-pushback-ms";
    public const string StatusDetailsTrailer = "grpc-status-details-bin";
    public const string Domain = "controlplane.v1";
    public const string RateLimited = "RATE_LIMITED";
    public const string TooManyWatches = "TOO_MANY_WATCHES";

    /// <summary>The pause suggested after a refused watch: slots free only when streams end.</summary>
    public static readonly TimeSpan WatchRetryDelay = TimeSpan.FromSeconds(1);

    public override Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        if (Exempt(context, out var key)) return continuation(request, context);
        Admit(key);
        return continuation(request, context);
    }

    public override async Task ServerStreamingServerHandler<TRequest, TResponse>(TRequest request, IServerStreamWriter<TResponse> responseStream,
        ServerCallContext context, ServerStreamingServerMethod<TRequest, TResponse> continuation)
    {
        if (Exempt(context, out var key))
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
            return;
        }
        Admit(key);
        if (!limiter.TryOpenWatch(key, out var slot))
        {
            var most = limiter.Options.WatchesPerClient;
            throw Refusal(key, TooManyWatches, WatchRetryDelay,
                $"client {key} holds {most} open watches, the most Limits:WatchesPerClient allows; close one and retry",
                $"at most {most} concurrent watches per client");
        }
        using (slot)
        {
            await continuation(request, responseStream, context).ConfigureAwait(false);
        }
    }

    private bool Exempt(ServerCallContext context, out string key)
    {
        key = string.Empty;
        if (ApiMethod.Of(context.Method).IsInfrastructure || self?.Made(context) == true) return true;
        key = Caller.Of(context).Key;
        return key == "peer:local";
    }

    private void Admit(string key)
    {
        if (!limiter.TryAcquire(key, out var retryAfter))
        {
            var options = limiter.Options;
            throw Refusal(key, RateLimited, retryAfter,
                $"client {key} exceeded Limits:RequestsPerSecond ({options.RequestsPerSecond:0.###}/s, burst {options.EffectiveBurst:0}); retry in {Math.Ceiling(retryAfter.TotalMilliseconds):0} ms",
                $"at most {options.RequestsPerSecond:0.###} requests per second per client, burst {options.EffectiveBurst:0}");
        }
    }

    private static RpcException Refusal(string key, string reason, TimeSpan retryAfter, string message, string quota)
    {
        var milliseconds = (long)Math.Ceiling(retryAfter.TotalMilliseconds);
        var status = new Google.Rpc.Status
        {
            Code = (int)Code.ResourceExhausted,
            Message = message,
            Details =
            {
                Any.Pack(new RetryInfo { RetryDelay = Duration.FromTimeSpan(TimeSpan.FromMilliseconds(milliseconds)) }),
                Any.Pack(new QuotaFailure { Violations = { new QuotaFailure.Types.Violation { Subject = key, Description = quota } } }),
                Any.Pack(new ErrorInfo { Reason = reason, Domain = Domain, Metadata = { ["client"] = key } }),
            },
        };
        var trailers = new Metadata
        {
            { RetryPushbackTrailer, milliseconds.ToString(System.Globalization.CultureInfo.InvariantCulture) },
            { StatusDetailsTrailer, status.ToByteArray() },
        };
        return new RpcException(new Grpc.Core.Status(StatusCode.ResourceExhausted, message), trailers);
    }
}
