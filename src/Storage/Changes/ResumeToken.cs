using System.Buffers.Text;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Storage.Changes;

/// <summary>
/// The opaque position of a watcher: one revision per partition, as a version byte and
/// varints in URL-safe base64. Clients store it and send it back; they never compute with it.
/// </summary>
public static class ResumeToken
{
    private const byte Version = 1;

    public static string Encode(ReadOnlySpan<long> revisions)
    {
        Span<byte> buffer = stackalloc byte[MaxEncodedLength(revisions.Length)];
        var n = EncodeUtf8(revisions, buffer);
        return System.Text.Encoding.ASCII.GetString(buffer[..n]);
    }

    /// <summary>Upper bound of the encoded length for a number of partitions.</summary>
    public static int MaxEncodedLength(int partitions) => Base64Url.GetEncodedLength(2 + partitions * 10);

    /// <summary>Writes the token as ASCII into <paramref name="destination"/> (no allocation); returns its length.</summary>
    public static int EncodeUtf8(ReadOnlySpan<long> revisions, Span<byte> destination)
    {
        Span<byte> buffer = stackalloc byte[2 + revisions.Length * 10];
        var n = 0;
        buffer[n++] = Version;
        n += WriteVarint(buffer[n..], (ulong)revisions.Length);
        foreach (var revision in revisions)
        {
            n += WriteVarint(buffer[n..], (ulong)revision);
        }
        return Base64Url.EncodeToUtf8(buffer[..n], destination);
    }

    public static long[] Decode(string token, int partitionCount, string field = "resume_token")
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
        if (span.Length < 2 || span[0] != Version || !TryReadVarint(ref span, 1, out var count) || (int)count != partitionCount)
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
