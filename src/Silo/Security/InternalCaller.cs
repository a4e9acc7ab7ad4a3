using System.Security.Cryptography;
using Grpc.Core;
using Grpc.Core.Interceptors;

namespace ControlPlane.Silo.Security;

/// <summary>
/// The silo's own client of its API: the embedded DNS server's feed, when it follows the silo over
/// loopback TCP (there is no unix socket to follow). Its calls carry a secret made at start, which
/// never leaves the process but over that connection, so per-client limits leave them out: the
/// feed is the silo's, not a client's, and must not take a watch slot from the clients on the
/// same host (127.0.0.1 is one client to the limits).
/// </summary>
public sealed class InternalCaller
{
    public const string Header = "cp-internal-caller";

    private readonly string _secret = Convert.ToHexString(RandomNumberGenerator.GetBytes(32));

    /// <summary>Whether the call is the silo's own.</summary>
    public bool Made(ServerCallContext context) =>
        context.RequestHeaders.GetValue(Header) is { } presented
        && CryptographicOperations.FixedTimeEquals(System.Text.Encoding.ASCII.GetBytes(presented), System.Text.Encoding.ASCII.GetBytes(_secret));

    /// <summary>Adds the secret to every call of the silo's own client.</summary>
    public Interceptor Stamp() => new Stamping(_secret);

    private sealed class Stamping(string secret) : Interceptor
    {
        public override AsyncUnaryCall<TResponse> AsyncUnaryCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
            AsyncUnaryCallContinuation<TRequest, TResponse> continuation) => continuation(request, Stamped(context));

        public override AsyncServerStreamingCall<TResponse> AsyncServerStreamingCall<TRequest, TResponse>(TRequest request, ClientInterceptorContext<TRequest, TResponse> context,
            AsyncServerStreamingCallContinuation<TRequest, TResponse> continuation) => continuation(request, Stamped(context));

        private ClientInterceptorContext<TRequest, TResponse> Stamped<TRequest, TResponse>(ClientInterceptorContext<TRequest, TResponse> context)
            where TRequest : class where TResponse : class
        {
            var headers = new Metadata();
            foreach (var entry in context.Options.Headers ?? []) headers.Add(entry);
            headers.Add(Header, secret);
            return new(context.Method, context.Host, context.Options.WithHeaders(headers));
        }
    }
}
