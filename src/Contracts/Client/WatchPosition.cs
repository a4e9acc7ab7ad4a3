using System.Buffers.Binary;
using System.Buffers.Text;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// The wire format of a resume token: a version byte, the issuing store's id (8 bytes, from
/// version 2), the partition count and one varint revision per partition, in URL-safe base64.
/// To API clients a token is opaque; the silo (which issues and checks tokens) and the DNS server
/// (whose SOA serial follows the store's position) read it through this one codec.
/// </summary>
public static class WatchPosition
{
    public const byte Version = 2;

    /// <summary>Tokens issued before stores had an identity: no store id.</summary>
    public const byte VersionWithoutStore = 1;

    private const int StoreIdLength = sizeof(ulong);

    /// <summary>Upper bound of the encoded length for a number of partitions.</summary>
    public static int MaxEncodedLength(int partitions) => Base64Url.GetEncodedLength(2 + StoreIdLength + partitions * 10);

    /// <summary>Writes the token as ASCII into <paramref name="destination"/> (no allocation); returns its length.</summary>
    public static int EncodeUtf8(ulong store, ReadOnlySpan<long> revisions, Span<byte> destination)
    {
        Span<byte> buffer = stackalloc byte[2 + StoreIdLength + revisions.Length * 10];
        var n = 0;
        buffer[n++] = Version;
        BinaryPrimitives.WriteUInt64LittleEndian(buffer[n..], store);
        n += StoreIdLength;
        n += WriteVarint(buffer[n..], (ulong)revisions.Length);
        foreach (var revision in revisions)
        {
            n += WriteVarint(buffer[n..], (ulong)revision);
        }
        return Base64Url.EncodeToUtf8(buffer[..n], destination);
    }

    /// <summary>What reading a token found.</summary>
    public enum Outcome
    {
        Read,
        /// <summary>Not base64url, an unknown version, or too short to hold a header.</summary>
        Foreign,
        /// <summary>A known header whose revisions are cut short or followed by more bytes.</summary>
        Corrupt,
    }

    /// <summary>
    /// The bytes of a token as the server writes them (unpadded base64url), or null for text that is
    /// not one: the decoder would skip white space (a token with a space before it passed), which no
    /// token the server issues has.
    /// </summary>
    public static byte[]? Bytes(string token)
    {
        if (token.AsSpan().ContainsAnyExcept(TokenAlphabet)) return null;
        try
        {
            return Base64Url.DecodeFromChars(token);
        }
        catch (FormatException)
        {
            return null;
        }
    }

    private static readonly System.Buffers.SearchValues<char> TokenAlphabet =
        System.Buffers.SearchValues.Create("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

    /// <summary>
    /// Reads a token: its store (null for a version-1 token) and its revisions. Allocates only the
    /// revisions array.
    /// </summary>
    public static Outcome TryRead(string token, out ulong? store, out long[] revisions)
    {
        (store, revisions) = (null, []);
        if (Bytes(token) is not { } bytes) return Outcome.Foreign;
        var span = bytes.AsSpan();
        if (span.Length >= 2 + StoreIdLength && span[0] == Version)
        {
            store = BinaryPrimitives.ReadUInt64LittleEndian(span[1..]);
            span = span[StoreIdLength..];
        }
        else if (span.Length < 2 || span[0] != VersionWithoutStore)
        {
            return Outcome.Foreign;
        }
        if (!TryReadVarint(ref span, 1, out var count) || count > (ulong)span.Length)
        {
            return Outcome.Foreign;
        }
        revisions = new long[count];
        for (var i = 0; i < revisions.Length; i++)
        {
            if (!TryReadVarint(ref span, 0, out var value) || value > long.MaxValue)
            {
                return Outcome.Corrupt;
            }
            revisions[i] = (long)value;
        }
        return span.Length == 0 ? Outcome.Read : Outcome.Corrupt;
    }

    /// <summary>
    /// The sum of a token's revisions: it grows with every commit of its store, so it orders the
    /// positions of one store (0 for a token that cannot be read).
    /// </summary>
    public static ulong Ordinal(string token)
    {
        if (TryRead(token, out _, out var revisions) != Outcome.Read) return 0;
        var sum = 0UL;
        foreach (var revision in revisions) sum += (ulong)revision;
        return sum;
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
