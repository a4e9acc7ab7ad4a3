using Grpc.Core;
using Grpc.Net.Client;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// Calls to one of several silos. Calls go to the current silo; a unary call that fails with
/// UNAVAILABLE (a refused or dropped connection, an unanswered keepalive ping, or a silo that
/// cannot serve: its store is lost or it is no longer a cluster member) is made again on the next silo, each silo once, within
/// the call's deadline, and the silo that answers becomes the current one. A stream that fails
/// with UNAVAILABLE, and a call that runs out of time (a silo that stopped answering), moves the
/// current silo on, so the caller's next attempt (a resumed watch, the next heartbeat) goes elsewhere.
/// Callers see every way a silo goes away as one status, UNAVAILABLE.
/// </summary>
/// <remarks>
/// A write made again on the next silo may already have committed on the first one, just before
/// its connection dropped: a create then fails ALREADY_EXISTS and an update with an etag ABORTED.
/// </remarks>
public sealed class FailoverCallInvoker : CallInvoker, IDisposable
{
    private readonly string[] _addresses;
    private readonly GrpcChannel?[] _channels;
    private readonly int _maxConnections;
    private readonly ClientTls? _tls;
    private readonly Lock _lock = new();
    private int _current;

    /// <param name="tls">Mutual TLS for "https://" addresses (the cluster CA, this client's certificate).</param>
    public FailoverCallInvoker(IReadOnlyList<string> addresses, int maxConnections = 1, ClientTls? tls = null)
    {
        _tls = tls;
        if (addresses.Count == 0) throw new ArgumentException("no silo address", nameof(addresses));
        _addresses = [.. addresses];
        _channels = new GrpcChannel?[_addresses.Length];
        _maxConnections = maxConnections;
        // Fail on a malformed address now, not at the first call.
        Invoker(0);
    }

    /// <summary>Splits a comma-separated list of addresses ("http://a:7070,http://b:7070").</summary>
    public static string[] Split(string addresses) =>
        addresses.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public IReadOnlyList<string> Addresses => _addresses;

    /// <summary>The silo calls go to now.</summary>
    public string Current
    {
        get { lock (_lock) return _addresses[_current]; }
    }

    /// <summary>Told (silo left, reason) whenever calls move on from a silo.</summary>
    public Action<string, string>? FailedOver { get; init; }

    public override TResponse BlockingUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request) =>
        AsyncUnaryCall(method, host, options, request).ResponseAsync.GetAwaiter().GetResult();

    public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        options = Traced(options);
        var attempts = new UnaryAttempts<TResponse>();
        var response = attempts.RunAsync(this, index => Invoker(index).AsyncUnaryCall(method, host, options, request), options.CancellationToken);
        return new AsyncUnaryCall<TResponse>(response, attempts.HeadersAsync, attempts.GetStatus, attempts.GetTrailers, attempts.Dispose);
    }

    /// <summary>Within a recorded span (netctl with OTLP configured), the call carries its traceparent: the silo's API span continues the trace.</summary>
    private static CallOptions Traced(CallOptions options)
    {
        if (System.Diagnostics.Activity.Current is not { Recorded: true } activity) return options;
        var headers = options.Headers ?? [];
        headers.Add("traceparent", Hosting.Telemetry.TraceparentOf(activity.Context));
        return options.WithHeaders(headers);
    }

    public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options, TRequest request)
    {
        options = Traced(options);
        var index = CurrentIndex();
        var call = Invoker(index).AsyncServerStreamingCall(method, host, options, request);
        return new AsyncServerStreamingCall<TResponse>(new WatchedStream<TResponse>(call.ResponseStream, this, index),
            call.ResponseHeadersAsync, call.GetStatus, call.GetTrailers, call.Dispose);
    }

    public override AsyncClientStreamingCall<TRequest, TResponse> AsyncClientStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        Invoker(CurrentIndex()).AsyncClientStreamingCall(method, host, options);

    public override AsyncDuplexStreamingCall<TRequest, TResponse> AsyncDuplexStreamingCall<TRequest, TResponse>(Method<TRequest, TResponse> method, string? host, CallOptions options) =>
        Invoker(CurrentIndex()).AsyncDuplexStreamingCall(method, host, options);

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var channel in _channels) channel?.Dispose();
        }
    }

    /// <summary>
    /// Moves calls on from <paramref name="address"/> if it is still the current silo: for a
    /// caller that knows its silo is going away although no call failed (a watch the server ended).
    /// </summary>
    public void MoveFrom(string address)
    {
        var index = Array.IndexOf(_addresses, address);
        if (index >= 0) MovedOn(index);
    }

    private int CurrentIndex()
    {
        lock (_lock) return _current;
    }

    private CallInvoker Invoker(int index)
    {
        lock (_lock)
        {
            return (_channels[index] ??= ControlPlaneChannel.Create(_addresses[index], _maxConnections, _tls)).CreateCallInvoker();
        }
    }

    /// <summary>Calls move on from <paramref name="index"/> (unless another call already moved them).</summary>
    private void Leave(int index, RpcException reason)
    {
        if (_addresses.Length > 1 && MovedOn(index)) FailedOver?.Invoke(_addresses[index], Calls.Reason(reason));
    }

    /// <summary>The silo after <paramref name="index"/> becomes current, if <paramref name="index"/> still is.</summary>
    private bool MovedOn(int index)
    {
        lock (_lock)
        {
            if (_current != index) return false;
            _current = (index + 1) % _addresses.Length;
            return true;
        }
    }

    private void Settle(int index)
    {
        lock (_lock) _current = index;
    }

    /// <summary>
    /// Whether a call failed because its silo could not be reached or went away (rather than the
    /// silo answering with an error): UNAVAILABLE, or a failure of the HTTP/2 transport itself
    /// (a keepalive ping unanswered, a reset connection), which Grpc.Net.Client reports as INTERNAL.
    /// </summary>
    public static bool Unreachable(RpcException e) => e.StatusCode == StatusCode.Unavailable
        || (e.StatusCode == StatusCode.Internal && e.Status.DebugException is HttpRequestException or HttpProtocolException or IOException);

    /// <summary>
    /// Callers see one status for a silo that went away or did not answer in time: UNAVAILABLE,
    /// naming the silo and which of the two it was.
    /// </summary>
    private RpcException AsUnavailable(RpcException e, int index) => e.StatusCode switch
    {
        StatusCode.Unavailable when e.Status.Detail.Length > 0 => e,
        StatusCode.DeadlineExceeded => new RpcException(new Status(StatusCode.Unavailable,
            $"{_addresses[index]} did not answer within the call's deadline{(e.Status.Detail.Length > 0 ? ": " + e.Status.Detail : "")}", e.Status.DebugException), e.Trailers),
        _ => new RpcException(new Status(StatusCode.Unavailable, $"{_addresses[index]} went away: {Calls.Reason(e)}", e.Status.DebugException), e.Trailers),
    };

    /// <summary>One unary call, made on each silo in turn while they answer UNAVAILABLE.</summary>
    private sealed class UnaryAttempts<TResponse>
    {
        private readonly TaskCompletionSource<Metadata> _headers = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private AsyncUnaryCall<TResponse>? _last;

        public Task<Metadata> HeadersAsync => _headers.Task;

        public async Task<TResponse> RunAsync(FailoverCallInvoker owner, Func<int, AsyncUnaryCall<TResponse>> start, CancellationToken cancellationToken)
        {
            var first = owner.CurrentIndex();
            for (var i = 0; ; i++)
            {
                var index = (first + i) % owner._addresses.Length;
                var call = start(index);
                Volatile.Write(ref _last, call);
                try
                {
                    var response = await call.ResponseAsync.ConfigureAwait(false);
                    owner.Settle(index);
                    _headers.TrySetResult(await call.ResponseHeadersAsync.ConfigureAwait(false));
                    return response;
                }
                catch (RpcException e) when (Unreachable(e) && i + 1 < owner._addresses.Length && !cancellationToken.IsCancellationRequested)
                {
                    owner.Leave(index, e);
                    call.Dispose();
                }
                catch (Exception e)
                {
                    _headers.TrySetResult(call.ResponseHeadersAsync.IsCompletedSuccessfully ? call.ResponseHeadersAsync.Result : new Metadata());
                    // A silo that timed out (stopped, overloaded) is left too, for the calls after this one.
                    if (e is RpcException failed && (Unreachable(failed) || (failed.StatusCode == StatusCode.DeadlineExceeded && !Calls.IsClassified(failed))))
                    {
                        owner.Leave(index, failed);
                        throw owner.AsUnavailable(failed, index);
                    }
                    throw;
                }
            }
        }

        public Status GetStatus() => Volatile.Read(ref _last) is { } call ? call.GetStatus() : throw new InvalidOperationException("the call has not started");

        public Metadata GetTrailers() => Volatile.Read(ref _last) is { } call ? call.GetTrailers() : throw new InvalidOperationException("the call has not started");

        public void Dispose() => Volatile.Read(ref _last)?.Dispose();
    }

    /// <summary>A response stream that moves calls on from its silo when the silo goes away.</summary>
    private sealed class WatchedStream<T>(IAsyncStreamReader<T> inner, FailoverCallInvoker owner, int index) : IAsyncStreamReader<T>
    {
        public T Current => inner.Current;

        public async Task<bool> MoveNext(CancellationToken cancellationToken)
        {
            try
            {
                return await inner.MoveNext(cancellationToken).ConfigureAwait(false);
            }
            catch (RpcException e) when (Unreachable(e) && !cancellationToken.IsCancellationRequested)
            {
                owner.Leave(index, e);
                throw owner.AsUnavailable(e, index);
            }
        }
    }
}
