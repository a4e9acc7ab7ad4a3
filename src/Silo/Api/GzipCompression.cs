using System.Buffers.Binary;
using System.IO.Compression;
using System.IO.Hashing;
using Grpc.Core;
using Grpc.Net.Compression;

namespace ControlPlane.Silo.Api;

/// <summary>
/// grpc-encoding gzip, as Grpc.AspNetCore's own provider, except that only a whole, intact gzip
/// member is read: its end must be the message's end, and the CRC-32 and length in its trailer
/// must match what it decompressed to (RFC 1952). GZipStream by itself returns what it could
/// decompress of a truncated message and ignores bytes after its end, so a cut-off
/// DeleteRequest could lose its etag and run unconditionally. Anything else fails INTERNAL saying
/// so (the gRPC status for a message the server cannot read, as for a truncated frame). A body of
/// several members (which no gRPC client sends) is refused the same way.
/// </summary>
public sealed class GzipCompression : ICompressionProvider
{
    public string EncodingName => "gzip";

    public Stream CreateCompressionStream(Stream stream, CompressionLevel? compressionLevel) =>
        new GZipStream(stream, compressionLevel ?? CompressionLevel.Fastest, leaveOpen: true);

    public Stream CreateDecompressionStream(Stream stream) => new Checked(stream);

    private static RpcException NotGzip(string reason) =>
        new(new Status(StatusCode.Internal, $"the message is not valid gzip (grpc-encoding gzip): {reason}"));

    /// <summary>Decompresses, and at the end checks the trailer against what came out.</summary>
    private sealed class Checked : ReadOnlyStream
    {
        private readonly Tail _input;
        private readonly GZipStream _gzip;
        private readonly Crc32 _crc = new();
        private long _length;
        private bool _verified;

        public Checked(Stream compressed)
        {
            _input = new Tail(compressed);
            _gzip = new GZipStream(_input, CompressionMode.Decompress, leaveOpen: true);
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            int read;
            try
            {
                read = _gzip.Read(buffer);
            }
            catch (InvalidDataException e)
            {
                throw NotGzip(e.Message);
            }
            return Counted(buffer[..read]);
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            int read;
            try
            {
                read = await _gzip.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            }
            catch (InvalidDataException e)
            {
                throw NotGzip(e.Message);
            }
            return Counted(buffer.Span[..read]);
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        private int Counted(ReadOnlySpan<byte> read)
        {
            if (read.Length > 0)
            {
                _crc.Append(read);
                _length += read.Length;
                return read.Length;
            }
            if (!_verified)
            {
                // The decompressor has read its input to the end: the last 8 bytes must be this
                // member's trailer (CRC-32, then the length modulo 2^32, both little-endian).
                var trailer = _input.Last8;
                if (_input.Total < 18 || BinaryPrimitives.ReadUInt32LittleEndian(trailer) != _crc.GetCurrentHashAsUInt32()
                    || BinaryPrimitives.ReadUInt32LittleEndian(trailer[4..]) != (uint)_length)
                {
                    throw NotGzip("it is cut short, has bytes after its end, or its trailer does not match its content");
                }
                _verified = true;
            }
            return 0;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) _gzip.Dispose();
            base.Dispose(disposing);
        }
    }

    /// <summary>Passes the compressed bytes through, keeping the last 8 and the count.</summary>
    private sealed class Tail(Stream inner) : ReadOnlyStream
    {
        private readonly byte[] _last = new byte[8];
        private readonly byte[] _ordered = new byte[8];

        public long Total { get; private set; }

        /// <summary>The last 8 bytes read, oldest first.</summary>
        public ReadOnlySpan<byte> Last8
        {
            get
            {
                for (var i = 0; i < 8; i++) _ordered[i] = _last[(Total + i) % 8];
                return _ordered;
            }
        }

        public override int Read(byte[] buffer, int offset, int count) => Read(buffer.AsSpan(offset, count));

        public override int Read(Span<byte> buffer)
        {
            var read = inner.Read(buffer);
            Keep(buffer[..read]);
            return read;
        }

        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            var read = await inner.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
            Keep(buffer.Span[..read]);
            return read;
        }

        public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
            ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

        /// <summary>The byte at position k of the input goes to slot k mod 8 (only the last 8 of a read can stay).</summary>
        private void Keep(ReadOnlySpan<byte> read)
        {
            for (var j = Math.Max(0, read.Length - 8); j < read.Length; j++) _last[(Total + j) % 8] = read[j];
            Total += read.Length;
        }
    }

    /// <summary>What the two streams above share: they are read forward only.</summary>
    private abstract class ReadOnlyStream : Stream
    {
        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
