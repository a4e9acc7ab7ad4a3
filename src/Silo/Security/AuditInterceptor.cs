using System.Collections.Concurrent;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;
using Grpc.Core.Interceptors;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Silo.Security;

/// <summary>
/// Records every write call (see <see cref="ApiMethod"/> for what counts as one) in the
/// <see cref="AuditLog"/>: who made it, what it touched, its outcome and, when it succeeded,
/// the revision (etag) of the result. The line is written before the answer leaves, so every
/// acknowledged write is in the log; a failure (a rejection by the limits included, since this
/// interceptor is the outermost) is recorded with its status code and message. Writes are
/// unary calls only; streams (Watch) pass through.
/// </summary>
public sealed partial class AuditInterceptor(AuditLog log, TimeProvider time, ILogger<AuditInterceptor> logger) : Interceptor
{
    private static readonly ConcurrentDictionary<MessageDescriptor, FieldDescriptor?> MetadataFields = new();

    public override async Task<TResponse> UnaryServerHandler<TRequest, TResponse>(TRequest request, ServerCallContext context,
        UnaryServerMethod<TRequest, TResponse> continuation)
    {
        var method = ApiMethod.Of(context.Method);
        if (!method.IsWrite)
        {
            return await continuation(request, context).ConfigureAwait(false);
        }
        TResponse response;
        try
        {
            response = await continuation(request, context).ConfigureAwait(false);
        }
        catch (RpcException e)
        {
            Record(method, request, null, context, e.StatusCode, e.Status.Detail);
            throw;
        }
        catch (OperationCanceledException) when (context.CancellationToken.IsCancellationRequested)
        {
            Record(method, request, null, context, StatusCode.Cancelled, "the client cancelled the call");
            throw;
        }
        catch (Exception e)
        {
            Record(method, request, null, context, StatusCode.Unknown, e.GetType().Name);
            throw;
        }
        Record(method, request, response, context, StatusCode.OK, null);
        return response;
    }

    private void Record(ApiMethod method, object request, object? response, ServerCallContext context, StatusCode outcome, string? error)
    {
        var (ns, name) = Target(request);
        var revision = response is IMessage result && MetaOf(result) is { } meta && meta.Etag.Length > 0 ? meta.Etag : null;
        var entry = new AuditEntry(time.GetUtcNow(), Caller.Of(context), context.Peer, method.Name, method.Kind, ns, name, outcome, revision, error);
        try
        {
            log.Append(entry);
        }
        catch (IOException e)
        {
            // The write happened (or failed) already; the caller hears its outcome, the operator this.
            Log.AppendFailed(logger, e, log.Path);
            if (outcome == StatusCode.OK) throw new RpcException(new Status(StatusCode.Internal, "the write was made but could not be audited"));
        }
    }

    /// <summary>The namespace and name a request names: an object's metadata, or its name fields.</summary>
    private static (string? Namespace, string? Name) Target(object request) => request switch
    {
        GetRequest r => (r.Namespace, r.Name),
        DeleteRequest r => (r.Namespace, r.Name),
        HeartbeatRequest r => (null, r.Name),
        ReportProgrammedRequest r => (null, r.Name),
        IMessage m when MetaOf(m) is { } meta => (meta.Namespace, meta.Name),
        _ => (null, null),
    };

    private static ObjectMeta? MetaOf(IMessage message)
    {
        var field = MetadataFields.GetOrAdd(message.Descriptor, d => d.FindFieldByName("metadata") is { FieldType: FieldType.Message } f
            && f.MessageType == ObjectMeta.Descriptor ? f : null);
        return field?.Accessor.GetValue(message) as ObjectMeta;
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "could not append to the audit log {Path}")]
        public static partial void AppendFailed(ILogger logger, Exception exception, string path);
    }
}
