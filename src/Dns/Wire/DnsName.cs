using System.Buffers;
using System.Text;

namespace ControlPlane.Dns.Wire;

/// <summary>
/// Domain names on the wire. Reading follows compression pointers only backwards (so a pointer
/// loop cannot exist) and bounds the name at 255 bytes; the text form is lower-case, dot
/// separated, without the trailing dot, written into a caller's span (no allocation). Labels are
/// octet strings (RFC 2181 §11): a '.' byte within one reads as <see cref="LiteralDot"/>.
/// </summary>
public static class DnsName
{
    public const int MaxWireLength = 255;
    private const int HeaderLength = 12;

    /// <summary>
    /// What a '.' byte inside a label (presentation form <c>\.</c>) reads as: a character no name
    /// we serve contains, so such a name matches nothing and no suffix match can start inside the
    /// label (a '.' in the text is always a label boundary).
    /// </summary>
    public const char LiteralDot = '\u2024';
    public const int MaxTextLength = 253;

    /// <summary>
    /// Reads the name at <paramref name="offset"/>. Returns the offset just past it in the
    /// message (past the first pointer if compressed), or -1 when the name is malformed.
    /// <paramref name="textLength"/> receives the length written to <paramref name="text"/>.
    /// </summary>
    public static int Read(ReadOnlySpan<byte> message, int offset, Span<char> text, out int textLength)
    {
        textLength = 0;
        var end = -1;
        var wireLength = 1;
        var position = offset;
        while (true)
        {
            if (position >= message.Length) return -1;
            var length = message[position];
            if (length == 0)
            {
                return end < 0 ? position + 1 : end;
            }
            switch (length & 0xC0)
            {
                case 0xC0:
                    if (!Jump(message, ref position, ref end)) return -1;
                    continue;
                case 0x00:
                    break;
                default:
                    return -1; // 0x40 and 0x80 label types are obsolete or unsupported
            }
            wireLength += length + 1;
            if (wireLength > MaxWireLength || position + 1 + length > message.Length) return -1;
            if (textLength > 0)
            {
                if (textLength >= text.Length) return -1;
                text[textLength++] = '.';
            }
            if (textLength + length > text.Length) return -1;
            foreach (var b in message.Slice(position + 1, length))
            {
                text[textLength++] = b switch
                {
                    >= (byte)'A' and <= (byte)'Z' => (char)(b + 32),
                    (byte)'.' => LiteralDot,
                    _ => (char)b,
                };
            }
            position += 1 + length;
        }
    }

    /// <summary>
    /// Follows the compression pointer at <paramref name="position"/>, noting where the name ends
    /// in the message the first time; false when it is malformed. Only strictly backwards: every
    /// jump lands earlier, so a walk terminates. Never into the header, which holds no name (a
    /// question copied into an answer would then point at the answer's own header).
    /// </summary>
    private static bool Jump(ReadOnlySpan<byte> message, ref int position, ref int end)
    {
        if (position + 1 >= message.Length) return false;
        var target = ((message[position] & 0x3F) << 8) | message[position + 1];
        if (target >= position || target < HeaderLength) return false;
        if (end < 0) end = position + 2;
        position = target;
        return true;
    }

    /// <summary>
    /// Copies the name at <paramref name="offset"/> to <paramref name="destination"/> in full,
    /// compression pointers followed (backwards only, as <see cref="Read"/> does), letter case
    /// kept, so it can be written into another message. Returns the offset past the name in
    /// <paramref name="message"/>, or -1 when it is malformed or does not fit.
    /// </summary>
    public static int Expand(ReadOnlySpan<byte> message, int offset, Span<byte> destination, out int written)
    {
        written = 0;
        var end = -1;
        var position = offset;
        while (true)
        {
            if (position >= message.Length) return -1;
            var length = message[position];
            if ((length & 0xC0) == 0xC0)
            {
                if (!Jump(message, ref position, ref end)) return -1;
                continue;
            }
            if ((length & 0xC0) != 0) return -1;
            if (written + 1 + length > Math.Min(MaxWireLength, destination.Length) || position + 1 + length > message.Length) return -1;
            message.Slice(position, 1 + length).CopyTo(destination[written..]);
            written += 1 + length;
            if (length == 0) return end < 0 ? position + 1 : end;
            position += 1 + length;
        }
    }

    /// <summary>
    /// Writes a name in the text form <see cref="Read"/> gives (dot separated, no trailing dot,
    /// <see cref="LiteralDot"/> for a '.' byte) in wire form; returns its length, or -1 when it
    /// has an empty or over-long label or does not fit.
    /// </summary>
    public static int Write(ReadOnlySpan<char> text, Span<byte> destination)
    {
        var written = 0;
        if (text.Length > 0)
        {
            foreach (var range in text.Split('.'))
            {
                var label = text[range];
                if (label.Length is 0 or > 63 || written + 1 + label.Length >= Math.Min(MaxWireLength, destination.Length)) return -1;
                destination[written++] = (byte)label.Length;
                foreach (var c in label)
                {
                    if (c != LiteralDot && c > 0xFF) return -1;
                    destination[written++] = c == LiteralDot ? (byte)'.' : (byte)c;
                }
            }
        }
        if (written >= destination.Length) return -1;
        destination[written++] = 0;
        return written;
    }

    /// <summary>Skips a name without decoding it; returns the offset past it or -1.</summary>
    public static int Skip(ReadOnlySpan<byte> message, int offset)
    {
        Span<char> scratch = stackalloc char[MaxWireLength];
        return Read(message, offset, scratch, out _);
    }

    /// <summary>Encodes a dotted name ("a.b.c", "a.b.c." or "" for the root) in wire form.</summary>
    public static byte[] Encode(string name)
    {
        var buffer = new ArrayBufferWriter<byte>(name.Length + 2);
        Write(buffer, name);
        return buffer.WrittenSpan.ToArray();
    }

    public static void Write(ArrayBufferWriter<byte> destination, string name)
    {
        var trimmed = name.TrimEnd('.');
        if (trimmed.Length > 0)
        {
            foreach (var label in trimmed.Split('.'))
            {
                var bytes = Encoding.ASCII.GetBytes(label);
                if (bytes.Length is 0 or > 63) throw new FormatException($"'{name}' has an empty label or one longer than 63 bytes");
                destination.Write([(byte)bytes.Length]);
                destination.Write(bytes);
            }
        }
        destination.Write([(byte)0]);
        if (destination.WrittenCount > MaxWireLength) throw new FormatException($"'{name}' is longer than 255 bytes on the wire");
    }

    /// <summary>Lower-case, no trailing dot: the form zone indexes use.</summary>
    public static string Canonical(string name) => name.TrimEnd('.').ToLowerInvariant();
}
