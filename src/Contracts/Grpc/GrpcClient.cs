using System.Buffers;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using Google.Protobuf;

namespace ControlPlane.Contracts.Grpc;

/// <summary>
/// A minimal gRPC client over HttpClient's HTTP/2 (h2c with prior knowledge, or a unix socket):
/// unary and server-streaming calls, deadlines, cancellation, status from trailers or from a
/// trailers-only response. Thread-safe; one instance multiplexes every call on its connection(s).
/// </summary>
public sealed class GrpcClient : IDisposable
{
    private static readonly MediaTypeHeaderValue GrpcMediaType = new(GrpcProtocol.ContentType);
    private readonly HttpClient[] _http;
    private uint _next;

    /// <param name="address">The server, http:// (h2c with prior knowledge).</param>
    /// <param name="connections">
    /// HTTP/2 connections to spread calls over, round robin. Each connection's frames are handled
    /// by one loop on either side, so a busy client gains from a few.
    /// </param>
    public GrpcClient(Uri address, int connections = 1) : this(address, Enumerable.Range(0, Math.Max(1, connections)).Select(_ => new SocketsHttpHandler()))
    {
    }

    private GrpcClient(Uri address, IEnumerable<SocketsHttpHandler> handlers)
    {
        _http = [.. handlers.Select(handler =>
        {
            handler.EnableMultipleHttp2Connections = true;
            handler.PooledConnectionIdleTimeout = TimeSpan.FromMinutes(5);
            return new HttpClient(handler)
            {
                BaseAddress = address,
                DefaultRequestVersion = HttpVersion.Version20,
                DefaultVersionPolicy = HttpVersionPolicy.RequestVersionExact,
                Timeout = Timeout.InfiniteTimeSpan,
            };
        })];
    }

    /// <summary>A client that speaks h2c over a unix domain socket.</summary>
    public static GrpcClient ForUnixSocket(string socketPath)
    {
        var handler = new SocketsHttpHandler
        {
            ConnectCallback = async (_, cancellationToken) =>
            {
                var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
                try
                {
                    await socket.ConnectAsync(new UnixDomainSocketEndPoint(socketPath), cancellationToken).ConfigureAwait(false);
                    return new NetworkStream(socket, ownsSocket: true);
                }
                catch
                {
                    socket.Dispose();
                    throw;
                }
            },
        };
        return new GrpcClient(new Uri("http://localhost"), [handler]);
    }

    /// <summary>Largest response message accepted.</summary>
    public int MaxReceiveMessageSize { get; init; } = GrpcProtocol.DefaultMaxMessageSize;

    public async Task<TResponse> UnaryAsync<TRequest, TResponse>(string method, TRequest request,
        MessageParser<TResponse> parser, CallOptions options = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        using var cancellation = CreateCancellation(options);
        try
        {
            using var response = await SendAsync(method, request, options, cancellation.Token).ConfigureAwait(false);
            await using var body = await response.Content.ReadAsStreamAsync(cancellation.Token).ConfigureAwait(false);
            var reader = new FrameReader(body, MaxReceiveMessageSize);
            var message = await reader.ReadAsync(parser, cancellation.Token).ConfigureAwait(false);
            // Drain to the end of the stream so that the trailers arrive.
            var extra = message is null ? null : await reader.ReadAsync(parser, cancellation.Token).ConfigureAwait(false);
            ThrowIfError(response);
            if (message is null || extra is not null)
            {
                throw new RpcException(StatusCode.Internal, message is null ? "the response carried no message" : "the unary response carried several messages");
            }
            return message;
        }
        catch (Exception e) when (Translate(e, options, cancellation) is { } rpc)
        {
            throw rpc;
        }
    }

    public async IAsyncEnumerable<TResponse> ServerStreamingAsync<TRequest, TResponse>(string method, TRequest request,
        MessageParser<TResponse> parser, CallOptions options = default)
        where TRequest : IMessage<TRequest>
        where TResponse : class, IMessage<TResponse>
    {
        using var cancellation = CreateCancellation(options);
        HttpResponseMessage response;
        FrameReader reader;
        try
        {
            response = await SendAsync(method, request, options, cancellation.Token).ConfigureAwait(false);
            reader = new FrameReader(await response.Content.ReadAsStreamAsync(cancellation.Token).ConfigureAwait(false), MaxReceiveMessageSize);
        }
        catch (Exception e) when (Translate(e, options, cancellation) is { } rpc)
        {
            throw rpc;
        }
        using (response)
        {
            while (true)
            {
                TResponse? message;
                try
                {
                    message = await reader.ReadAsync(parser, cancellation.Token).ConfigureAwait(false);
                    if (message is null)
                    {
                        ThrowIfError(response);
                        yield break;
                    }
                }
                catch (Exception e) when (Translate(e, options, cancellation) is { } rpc)
                {
                    throw rpc;
                }
                yield return message;
            }
        }
    }

    private async Task<HttpResponseMessage> SendAsync<TRequest>(string method, TRequest request, CallOptions options, CancellationToken cancellationToken)
        where TRequest : IMessage<TRequest>
    {
        var size = request.CalculateSize();
        var payload = new byte[GrpcProtocol.PrefixLength + size];
        GrpcProtocol.WritePrefix(payload, size);
        request.WriteTo(payload.AsSpan(GrpcProtocol.PrefixLength));
        var message = new HttpRequestMessage(HttpMethod.Post, method)
        {
            Content = new ByteArrayContent(payload),
            Version = HttpVersion.Version20,
            VersionPolicy = HttpVersionPolicy.RequestVersionExact,
        };
        message.Content.Headers.ContentType = GrpcMediaType;
        message.Headers.TryAddWithoutValidation("te", "trailers");
        if (options.Timeout is { } timeout)
        {
            message.Headers.TryAddWithoutValidation(GrpcProtocol.TimeoutHeader, GrpcProtocol.FormatTimeout(timeout));
        }
        var http = _http.Length == 1 ? _http[0] : _http[Interlocked.Increment(ref _next) % _http.Length];
        var response = await http.SendAsync(message, HttpCompletionOption.ResponseHeadersRead, cancellationToken).ConfigureAwait(false);
        if (response.StatusCode != HttpStatusCode.OK)
        {
            var code = response.StatusCode switch
            {
                HttpStatusCode.BadRequest => StatusCode.Internal,
                HttpStatusCode.Unauthorized => StatusCode.Unauthenticated,
                HttpStatusCode.Forbidden => StatusCode.PermissionDenied,
                HttpStatusCode.NotFound => StatusCode.Unimplemented,
                HttpStatusCode.TooManyRequests or HttpStatusCode.BadGateway or HttpStatusCode.ServiceUnavailable or HttpStatusCode.GatewayTimeout => StatusCode.Unavailable,
                _ => StatusCode.Unknown,
            };
            response.Dispose();
            throw new RpcException(code, $"HTTP status {(int)response.StatusCode}");
        }
        if (response.Headers.Contains(GrpcProtocol.StatusHeader))
        {
            // Trailers-only response.
            using (response)
            {
                ThrowIfError(response.Headers);
            }
            throw new RpcException(StatusCode.Internal, "trailers-only response with OK status carried no message");
        }
        return response;
    }

    private static void ThrowIfError(HttpResponseMessage response)
    {
        if (response.TrailingHeaders.Contains(GrpcProtocol.StatusHeader))
        {
            ThrowIfError(response.TrailingHeaders);
        }
        else if (response.Headers.Contains(GrpcProtocol.StatusHeader))
        {
            ThrowIfError(response.Headers);
        }
        else
        {
            throw new RpcException(StatusCode.Internal, "the response ended without a grpc-status");
        }
    }

    private static void ThrowIfError(HttpHeaders headers)
    {
        var status = headers.TryGetValues(GrpcProtocol.StatusHeader, out var values) ? values.FirstOrDefault() : null;
        if (!int.TryParse(status, out var code))
        {
            throw new RpcException(StatusCode.Internal, $"malformed grpc-status '{status}'");
        }
        if (code != 0)
        {
            var detail = headers.TryGetValues(GrpcProtocol.MessageHeader, out var messages) ? messages.FirstOrDefault() : null;
            throw new RpcException((StatusCode)code, GrpcProtocol.DecodeMessage(detail));
        }
    }

    private static CancellationTokenSource CreateCancellation(CallOptions options)
    {
        var source = CancellationTokenSource.CreateLinkedTokenSource(options.CancellationToken);
        if (options.Timeout is { } timeout)
        {
            source.CancelAfter(timeout);
        }
        return source;
    }

    private static RpcException? Translate(Exception e, CallOptions options, CancellationTokenSource cancellation) => e switch
    {
        RpcException => null,
        InvalidProtocolBufferException => new RpcException(StatusCode.Internal, "malformed response message: " + e.Message),
        OperationCanceledException or IOException or HttpRequestException when options.CancellationToken.IsCancellationRequested
            => new RpcException(StatusCode.Cancelled, "the call was cancelled"),
        OperationCanceledException or IOException or HttpRequestException when cancellation.IsCancellationRequested
            => new RpcException(StatusCode.DeadlineExceeded, "the deadline passed before the call completed"),
        HttpRequestException or IOException => new RpcException(StatusCode.Unavailable, e.Message),
        _ => null,
    };

    public void Dispose()
    {
        foreach (var http in _http)
        {
            http.Dispose();
        }
    }

    /// <summary>Reads length-prefixed messages from a response body.</summary>
    private sealed class FrameReader(Stream stream, int maxMessageSize)
    {
        private readonly byte[] _prefix = new byte[GrpcProtocol.PrefixLength];

        public async ValueTask<T?> ReadAsync<T>(MessageParser<T> parser, CancellationToken cancellationToken)
            where T : class, IMessage<T>
        {
            var read = await ReadFullAsync(_prefix, cancellationToken).ConfigureAwait(false);
            if (read == 0)
            {
                return null;
            }
            if (read < GrpcProtocol.PrefixLength)
            {
                throw new RpcException(StatusCode.Internal, "the response ended inside a message prefix");
            }
            if (_prefix[0] != 0)
            {
                throw new RpcException(StatusCode.Internal, "compressed response messages are not supported");
            }
            var length = System.Buffers.Binary.BinaryPrimitives.ReadUInt32BigEndian(_prefix.AsSpan(1));
            if (length > maxMessageSize)
            {
                throw new RpcException(StatusCode.ResourceExhausted, $"response message of {length} bytes exceeds the limit of {maxMessageSize}");
            }
            var buffer = ArrayPool<byte>.Shared.Rent((int)length);
            try
            {
                if (await ReadFullAsync(buffer.AsMemory(0, (int)length), cancellationToken).ConfigureAwait(false) < length)
                {
                    throw new RpcException(StatusCode.Internal, "the response ended inside a message");
                }
                return parser.ParseFrom(buffer.AsSpan(0, (int)length));
            }
            finally
            {
                ArrayPool<byte>.Shared.Return(buffer);
            }
        }

        private async ValueTask<int> ReadFullAsync(Memory<byte> destination, CancellationToken cancellationToken)
        {
            var total = 0;
            while (total < destination.Length)
            {
                var n = await stream.ReadAsync(destination[total..], cancellationToken).ConfigureAwait(false);
                if (n == 0)
                {
                    break;
                }
                total += n;
            }
            return total;
        }
    }
}
