using System.IO.Compression;
using Grpc.Core;
using Grpc.Net.Compression;

namespace ControlPlane.Silo.Api;

/// <summary>
/// grpc-encoding gzip, as Grpc.AspNetCore's own provider, except that a message that does not
/// decompress fails INTERNAL saying so (the gRPC status for a message the server cannot read,
/// as for a truncated frame) rather than UNKNOWN from the exception escaping the read.
/// </summary>
public sealed class GzipCompression : ICompressionProvider
{
    public string EncodingName => "gzip";

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) =>
        new GZipStream(stream, compressionLevel ?? CompressionLevel.Fastest, leaveOpen: true);

    public Stream CreateDecompressionStream(Stream stream) => new Classifying(new GZipStream(stream, CompressionMode.Decompress, leaveOpen: true));

    private sealed class Classifying(GZipStream inner) : Stream
    {
        private static RpcException NotGzip(InvalidDataException e) =>
            new(new Status(StatusCode.Internal, $"the message is not valid gzip (grpc-encoding gzip): {e.Message}"));

        public override int Read(byte[] buffer, int offset, int count)
        {
            try { return inner.Read(buffer, offset, count); }
            catch (InvalidDataException e) { throw NotGzip(e); }
        }

        public override int Read(Span<byte> buffer)
        {
            try { return inner.Read(buffer); }
            catch (InvalidDataException e) { throw NotGzip(e); }
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            try { return await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false); }
            catch (InvalidDataException e) { throw NotGzip(e); }
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

        protected override void Dispose(bool disposing)
        {
            if (disposing) inner.Dispose();
            base.Dispose(disposing);
        }
    }
}
