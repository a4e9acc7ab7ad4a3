using ControlPlane.Contracts.V1;
using ControlPlane.Storage.Changes;
using Google.Protobuf;

namespace ControlPlane.Silo.Api;

/// <summary>
/// One WatchEvent on the wire, already encoded: the event without its token (shared by every
/// watcher of the change) followed by field 15, this watcher's resume token (protobuf fields
/// concatenate). One instance per watcher, reused for every event it sends.
/// </summary>
public sealed class EncodedEvent(int maxTokenLength)
{
    public byte[] Head { get; private set; } = [];

    public byte[] Tail { get; } = new byte[3 + maxTokenLength];

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

    /// <summary>Writes field 15 (resume_token): tag, length and the token's ASCII. Allocation-free.</summary>
    private static int EncodeToken(byte[] buffer, ReadOnlySpan<long> position)
    {
        const byte tag = (WatchEvent.ResumeTokenFieldNumber << 3) | (byte)WireFormat.WireType.LengthDelimited;
        var length = ResumeToken.EncodeUtf8(position, buffer.AsSpan(3));
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
