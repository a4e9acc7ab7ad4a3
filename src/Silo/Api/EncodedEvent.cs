using System.Diagnostics;
using ControlPlane.Contracts.V1;
using ControlPlane.Storage.Changes;
using Google.Protobuf;

namespace ControlPlane.Silo.Api;

/// <summary>
/// One WatchEvent on the wire, already encoded: the event without its token (shared by every
/// watcher of the change) followed by field 15, this watcher's resume token (protobuf fields
/// concatenate). One instance per watcher, reused for every event it sends.
/// </summary>
public sealed class EncodedEvent(ulong store, int maxTokenLength)
{
    public byte[] Head { get; private set; } = [];

    // Field 15 (tag, 2 length bytes, token), then field 16 (2 tag bytes, length, 55-character traceparent).
    public byte[] Tail { get; } = new byte[3 + maxTokenLength + 3 + TraceparentLength];

    private const int TraceparentLength = 55;

    public int TailLength { get; private set; }

    /// <summary>A complete event (a bookmark), with no token appended.</summary>
    public EncodedEvent Set(byte[] complete)
    {
        Head = complete;
        TailLength = 0;
        return this;
    }

    /// <summary>An event head and the resume token of <paramref name="position"/> (none when empty).</summary>
    public EncodedEvent Set(byte[] head, ReadOnlySpan<long> position)
    {
        Head = head;
        TailLength = position.IsEmpty ? 0 : EncodeToken(Tail, position);
        return this;
    }

    /// <summary>Appends field 16 (traceparent) of <paramref name="context"/> to the tail. Allocation-free.</summary>
    public void SetTrace(ActivityContext context)
    {
        var buffer = Tail.AsSpan(TailLength);
        // Field 16 needs a two-byte tag: (16 << 3 | 2) as a varint.
        buffer[0] = (WatchEvent.TraceparentFieldNumber << 3 | (byte)WireFormat.WireType.LengthDelimited) & 0x7F | 0x80;
        buffer[1] = (WatchEvent.TraceparentFieldNumber << 3) >> 7;
        buffer[2] = TraceparentLength;
        var text = buffer.Slice(3, TraceparentLength);
        Span<byte> raw = stackalloc byte[16];
        "00-"u8.CopyTo(text);
        context.TraceId.CopyTo(raw);
        Hex(raw, text[3..35]);
        text[35] = (byte)'-';
        context.SpanId.CopyTo(raw[..8]);
        Hex(raw[..8], text[36..52]);
        text[52] = (byte)'-';
        text[53] = (byte)'0';
        text[54] = (context.TraceFlags & ActivityTraceFlags.Recorded) != 0 ? (byte)'1' : (byte)'0';
        TailLength += 3 + TraceparentLength;
    }

    private static void Hex(ReadOnlySpan<byte> from, Span<byte> to)
    {
        for (var i = 0; i < from.Length; i++)
        {
            to[2 * i] = (byte)"0123456789abcdef"[from[i] >> 4];
            to[2 * i + 1] = (byte)"0123456789abcdef"[from[i] & 15];
        }
    }

    /// <summary>Writes field 15 (resume_token): tag, length and the token's ASCII. Allocation-free.</summary>
    private int EncodeToken(byte[] buffer, ReadOnlySpan<long> position)
    {
        const byte tag = (WatchEvent.ResumeTokenFieldNumber << 3) | (byte)WireFormat.WireType.LengthDelimited;
        var length = ResumeToken.EncodeUtf8(store, position, buffer.AsSpan(3));
        buffer[0] = tag;
        if (length < 0x80)
        {
            buffer[1] = (byte)length;
            buffer.AsSpan(3, length).CopyTo(buffer.AsSpan(2));
            return 2 + length;
        }
        buffer[1] = (byte)(length | 0x80);
        buffer[2] = (byte)(length >> 7);
        return 3 + length;
    }
}
