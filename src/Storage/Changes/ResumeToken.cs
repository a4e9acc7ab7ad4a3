using System.Buffers.Text;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Storage.Changes;

/// <summary>
/// The opaque position of a watcher: the identity of the store that issued it and one revision
/// per partition, as a version byte, the 8-byte store id and varints in URL-safe base64. Clients
/// store it and send it back; they never compute with it. A token of another store (a data
/// directory or database replaced since) names revisions of another history: it is refused as
/// OUT_OF_RANGE, which tells a client to list again, like a compacted one. Version 1 tokens
/// (issued before stores had an identity) carry no id and are still read.
/// </summary>
public static class ResumeToken
{
    private const byte Version = 2;
    private const byte VersionWithoutStore = 1;
    private const int StoreIdLength = sizeof(ulong);

    public static string Encode(ulong store, ReadOnlySpan<long> revisions)
    {
        Span<byte> buffer = stackalloc byte[MaxEncodedLength(revisions.Length)];
        var n = EncodeUtf8(store, revisions, buffer);
        return System.Text.Encoding.ASCII.GetString(buffer[..n]);
    }

    /// <summary>Upper bound of the encoded length for a number of partitions.</summary>
    public static int MaxEncodedLength(int partitions) => Base64Url.GetEncodedLength(2 + StoreIdLength + partitions * 10);

    /// <summary>Writes the token as ASCII into <paramref name="destination"/> (no allocation); returns its length.</summary>
    public static int EncodeUtf8(ulong store, ReadOnlySpan<long> revisions, Span<byte> destination)
    {
        Span<byte> buffer = stackalloc byte[2 + StoreIdLength + revisions.Length * 10];
        var n = 0;
        buffer[n++] = Version;
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(buffer[n..], store);
        n += StoreIdLength;
        n += WriteVarint(buffer[n..], (ulong)revisions.Length);
        foreach (var revision in revisions)
        {
            n += WriteVarint(buffer[n..], (ulong)revision);
        }
        return Base64Url.EncodeToUtf8(buffer[..n], destination);
    }

    /// <summary>
    /// The revisions of a token issued by <paramref name="store"/>: INVALID_ARGUMENT naming
    /// <paramref name="field"/> when it is malformed, OUT_OF_RANGE when another store issued it.
    /// </summary>
    public static long[] Decode(string token, ulong store, int partitionCount, string field = "resume_token")
    {
        byte[] bytes;
        try
        {
            bytes = Base64Url.DecodeFromChars(token);
        }
        catch (FormatException)
        {
            throw ControlPlaneException.Invalid(field, "is not a token this server issued");
        }
        var span = bytes.AsSpan();
        if (span.Length >= 2 + StoreIdLength && span[0] == Version)
        {
            var issuer = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(span[1..]);
            span = span[StoreIdLength..];
            if (issuer != store)
            {
                throw new ControlPlaneException(ErrorCode.RevisionCompacted,
                    $"{field} was issued by another store (its data was replaced since); list again");
            }
        }
        else if (span.Length < 2 || span[0] != VersionWithoutStore)
        {
            throw ControlPlaneException.Invalid(field, "is not a token this server issued");
        }
        if (!TryReadVarint(ref span, 1, out var count) || (int)count != partitionCount)
        {
            throw ControlPlaneException.Invalid(field, "is not a token this server issued");
        }
        var revisions = new long[count];
        for (var i = 0; i < revisions.Length; i++)
        {
            if (!TryReadVarint(ref span, 0, out var value) || value > long.MaxValue)
            {
                throw ControlPlaneException.Invalid(field, "is truncated or corrupt");
            }
            revisions[i] = (long)value;
        }
        if (span.Length != 0)
        {
            throw ControlPlaneException.Invalid(field, "has trailing bytes");
        }
        return revisions;
    }

    private static int WriteVarint(Span<byte> destination, ulong value)
    {
        var n = 0;
        while (value >= 0x80)
        {
            destination[n++] = (byte)(value | 0x80);
            value >>= 7;
        }
        destination[n++] = (byte)value;
        return n;
    }

    private static bool TryReadVarint(ref Span<byte> span, int skip, out ulong value)
    {
        span = span[skip..];
        value = 0;
        for (var shift = 0; shift < 64 && span.Length > 0; shift += 7)
        {
            var b = span[0];
            span = span[1..];
            value |= (ulong)(b & 0x7F) << shift;
            if (b < 0x80)
            {
                return true;
            }
        }
        return false;
    }
}
