using System.Buffers;
using System.IO.Pipelines;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Contracts.Grpc;

/// <summary>
/// A minimal gRPC server on Kestrel (HTTP/2, h2c or TLS): routes "/Service/Method" paths to
/// registered unary or server-streaming handlers, frames messages, enforces grpc-timeout
/// deadlines and the maximum message size, and reports status in trailers (or trailers-only
/// when nothing was sent). Exceptions are turned into statuses by the registered classifier.
/// </summary>
public sealed class GrpcServer(ILogger<GrpcServer> logger)
{
    private delegate Task CallHandler(HttpContext http, ServerCallContext call);

    private readonly Dictionary<string, CallHandler> _methods = new(StringComparer.Ordinal);

    /// <summary>Largest request message accepted; larger ones get RESOURCE_EXHAUSTED.</summary>
    public int MaxReceiveMessageSize { get; set; } = GrpcProtocol.DefaultMaxMessageSize;

    /// <summary>Maps an application exception to a status, or null for "internal error".</summary>
    public Func<Exception, RpcException?> ExceptionClassifier { get; set; } = _ => null;

    public IEnumerable<string> Methods => _methods.Keys;

    public void AddUnary<TRequest, TResponse>(string path, MessageParser<TRequest> parser,
        Func<TRequest, ServerCallContext, Task<TResponse>> handler)
        where TRequest : IMessage<TRequest>
        where TResponse : IMessage<TResponse>
    {
        _methods.Add(path, async (http, call) =>
        {
            var request = await ReadRequestAsync(http.Request.BodyReader, parser, call.CancellationToken).ConfigureAwait(false);
            var response = await handler(request, call).ConfigureAwait(false);
            // Not flushed: the message and the trailers leave together.
            await new ServerStream(http.Response, call.CancellationToken).WriteAsync(response, flush: false).ConfigureAwait(false);
        });
    }

    public void AddServerStreaming<TRequest>(string path, MessageParser<TRequest> parser,
        Func<TRequest, ServerStream, ServerCallContext, Task> handler)
        where TRequest : IMessage<TRequest>
    {
        _methods.Add(path, async (http, call) =>
        {
            var request = await ReadRequestAsync(http.Request.BodyReader, parser, call.CancellationToken).ConfigureAwait(false);
            await handler(request, new ServerStream(http.Response, call.CancellationToken), call).ConfigureAwait(false);
        });
    }

    /// <summary>True when the request is a gRPC call this server should answer.</summary>
    public static bool IsGrpcRequest(HttpRequest request) =>
        HttpMethods.IsPost(request.Method) &&
        request.ContentType is { } type && type.StartsWith(GrpcProtocol.ContentType, StringComparison.OrdinalIgnoreCase);

    /// <summary>Serves one gRPC call, whatever happens; never throws.</summary>
    public async Task HandleAsync(HttpContext http)
    {
        var path = http.Request.Path.Value ?? string.Empty;
        if (!_methods.TryGetValue(path, out var handler))
        {
            await FinishAsync(http, new RpcException(StatusCode.Unimplemented, $"method {path} is not implemented")).ConfigureAwait(false);
            return;
        }
        var encoding = http.Request.Headers[GrpcProtocol.EncodingHeader].ToString();
        if (encoding.Length > 0 && encoding != "identity")
        {
            await FinishAsync(http, new RpcException(StatusCode.Unimplemented, $"grpc-encoding {encoding} is not supported")).ConfigureAwait(false);
            return;
        }

        DateTime? deadline = null;
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(http.RequestAborted);
        var timeoutHeader = http.Request.Headers[GrpcProtocol.TimeoutHeader].ToString();
        if (timeoutHeader.Length > 0)
        {
            if (!GrpcProtocol.TryParseTimeout(timeoutHeader, out var timeout))
            {
                await FinishAsync(http, new RpcException(StatusCode.InvalidArgument, $"grpc-timeout: malformed value '{timeoutHeader}'")).ConfigureAwait(false);
                return;
            }
            deadline = DateTime.UtcNow + timeout;
            cancellation.CancelAfter(timeout);
        }

        var call = new ServerCallContext(http, path, deadline, cancellation.Token);
        RpcException? failure = null;
        var work = handler(http, call);
        try
        {
            if (deadline is null)
            {
                await work.ConfigureAwait(false);
            }
            else
            {
                // A handler that does not observe the token must still not hold the caller past its deadline.
                var finished = await Task.WhenAny(work, Task.Delay(Timeout.Infinite, cancellation.Token)).ConfigureAwait(false);
                if (finished != work)
                {
                    _ = work.ContinueWith(static t => _ = t.Exception, TaskScheduler.Default);
                    failure = http.RequestAborted.IsCancellationRequested
                        ? new RpcException(StatusCode.Cancelled, "the client cancelled the call")
                        : new RpcException(StatusCode.DeadlineExceeded, "the deadline passed before the call completed");
                }
                else
                {
                    await work.ConfigureAwait(false);
                }
            }
        }
        catch (RpcException e)
        {
            failure = e;
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            failure = http.RequestAborted.IsCancellationRequested
                ? new RpcException(StatusCode.Cancelled, "the client cancelled the call")
                : new RpcException(StatusCode.DeadlineExceeded, "the deadline passed before the call completed");
        }
        catch (Exception e)
        {
            failure = ExceptionClassifier(e);
            if (failure is null)
            {
                logger.LogError(e, "Unhandled exception in {Method}", path);
                failure = new RpcException(StatusCode.Internal, "internal error");
            }
        }
        await FinishAsync(http, failure).ConfigureAwait(false);
    }

    private async Task<T> ReadRequestAsync<T>(PipeReader reader, MessageParser<T> parser, CancellationToken cancellationToken)
        where T : IMessage<T>
    {
        while (true)
        {
            var result = await reader.ReadAsync(cancellationToken).ConfigureAwait(false);
            var buffer = result.Buffer;
            if (GrpcProtocol.TryReadPrefix(buffer, out var compressed, out var length))
            {
                if (compressed)
                {
                    reader.AdvanceTo(buffer.Start);
                    throw new RpcException(StatusCode.Unimplemented, "compressed messages are not supported");
                }
                if (length > MaxReceiveMessageSize)
                {
                    reader.AdvanceTo(buffer.Start);
                    throw new RpcException(StatusCode.ResourceExhausted,
                        $"request message is {length} bytes, more than the limit of {MaxReceiveMessageSize}");
                }
                if (buffer.Length >= GrpcProtocol.PrefixLength + length)
                {
                    var payload = buffer.Slice(GrpcProtocol.PrefixLength, length);
                    T message;
                    try
                    {
                        message = parser.ParseFrom(payload);
                    }
                    catch (InvalidProtocolBufferException e)
                    {
                        throw new RpcException(StatusCode.InvalidArgument, $"request message is not a valid {typeof(T).Name}: {e.Message}");
                    }
                    finally
                    {
                        reader.AdvanceTo(payload.End);
                    }
                    return message;
                }
            }
            if (result.IsCompleted)
            {
                reader.AdvanceTo(buffer.Start, buffer.End);
                throw new RpcException(buffer.Length == 0 ? StatusCode.Internal : StatusCode.InvalidArgument,
                    buffer.Length == 0 ? "the request carried no message" : "the request message was truncated");
            }
            reader.AdvanceTo(buffer.Start, buffer.End);
        }
    }

    internal static void EnsureResponseStarted(HttpResponse response)
    {
        if (!response.HasStarted && response.Headers.ContentType.Count == 0)
        {
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = GrpcProtocol.ContentType;
        }
    }

    private static async Task FinishAsync(HttpContext http, RpcException? failure)
    {
        var response = http.Response;
        var code = failure?.StatusCode ?? StatusCode.OK;
        var message = failure?.Detail;
        if (!response.HasStarted && response.Headers.ContentType.Count == 0)
        {
            // Trailers-only: the status travels in the one HEADERS frame that ends the stream.
            response.StatusCode = StatusCodes.Status200OK;
            response.ContentType = GrpcProtocol.ContentType;
            response.Headers[GrpcProtocol.StatusHeader] = ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture);
            if (!string.IsNullOrEmpty(message))
            {
                response.Headers[GrpcProtocol.MessageHeader] = GrpcProtocol.EncodeMessage(message);
            }
            return;
        }
        if (http.RequestAborted.IsCancellationRequested)
        {
            return;
        }
        response.AppendTrailer(GrpcProtocol.StatusHeader, ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture));
        if (!string.IsNullOrEmpty(message))
        {
            response.AppendTrailer(GrpcProtocol.MessageHeader, GrpcProtocol.EncodeMessage(message));
        }
        try
        {
            await response.BodyWriter.FlushAsync().ConfigureAwait(false);
        }
        catch (Exception e) when (e is OperationCanceledException or IOException)
        {
            // The client left; there is nobody to tell.
        }
    }
}
