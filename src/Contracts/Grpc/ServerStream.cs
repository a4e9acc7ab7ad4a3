using System.Buffers;
using Google.Protobuf;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Contracts.Grpc;

/// <summary>
/// The response side of a server-streaming call. Messages are framed straight into Kestrel's
/// pipe; <see cref="WriteRawAsync"/> lets a fan-out serialise a shared part once and append a
/// per-subscriber tail (protobuf fields may be concatenated).
/// </summary>
public sealed class ServerStream
{
    private readonly HttpResponse _response;
    private readonly CancellationToken _cancellationToken;

    internal ServerStream(HttpResponse response, CancellationToken cancellationToken)
    {
        _response = response;
        _cancellationToken = cancellationToken;
    }

    /// <summary>Number of messages written so far.</summary>
    public long MessagesWritten { get; private set; }

    /// <summary>Writes one message; with <paramref name="flush"/> false it leaves with whatever follows (e.g. the trailers).</summary>
    public ValueTask WriteAsync(IMessage message, bool flush = true)
    {
        GrpcServer.EnsureResponseStarted(_response);
        var size = message.CalculateSize();
        var writer = _response.BodyWriter;
        GrpcProtocol.WritePrefix(writer.GetSpan(GrpcProtocol.PrefixLength), size);
        writer.Advance(GrpcProtocol.PrefixLength);
        message.WriteTo(writer);
        MessagesWritten++;
        return flush ? FlushAsync() : ValueTask.CompletedTask;
    }

    /// <summary>
    /// Writes one message made of two already-serialised parts. With <paramref name="flush"/>
    /// false it is only buffered: a burst of messages then goes out in one flush.
    /// </summary>
    public ValueTask WriteRawAsync(ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail, bool flush = true)
    {
        GrpcServer.EnsureResponseStarted(_response);
        var writer = _response.BodyWriter;
        var total = head.Length + tail.Length;
        var span = writer.GetSpan(GrpcProtocol.PrefixLength + total);
        GrpcProtocol.WritePrefix(span, total);
        head.CopyTo(span[GrpcProtocol.PrefixLength..]);
        tail.CopyTo(span[(GrpcProtocol.PrefixLength + head.Length)..]);
        writer.Advance(GrpcProtocol.PrefixLength + total);
        MessagesWritten++;
        return flush ? FlushAsync() : ValueTask.CompletedTask;
    }

    /// <summary>Sends whatever has been written.</summary>
    public ValueTask FlushAsync()
    {
        var flush = _response.BodyWriter.FlushAsync(_cancellationToken);
        return flush.IsCompletedSuccessfully ? ValueTask.CompletedTask : AwaitFlush(flush);

        static async ValueTask AwaitFlush(ValueTask<System.IO.Pipelines.FlushResult> pending) => await pending.ConfigureAwait(false);
    }
}
