using System.Buffers.Binary;

namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>
/// Builds a batch of netlink messages in one buffer: header, family header, attributes (nested
/// ones too), each padded to 4 bytes, lengths patched when a message or nest ends. Many
/// requests go to the kernel in one send.
/// </summary>
internal sealed class MessageWriter
{
    private byte[] _buffer = new byte[16 * 1024];
    private readonly Stack<int> _nests = new();
    private int _messageStart = -1;

    public int Length { get; private set; }

    public int Count { get; private set; }

    public ReadOnlySpan<byte> Written => _buffer.AsSpan(0, Length);

    public void Clear()
    {
        Length = 0;
        Count = 0;
        _nests.Clear();
        _messageStart = -1;
    }

    public void BeginMessage(ushort type, ushort flags, uint sequence)
    {
        _messageStart = Length;
        var header = Reserve(16);
        BinaryPrimitives.WriteUInt16LittleEndian(header[4..], type);
        BinaryPrimitives.WriteUInt16LittleEndian(header[6..], flags);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], sequence);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], 0);
    }

    public void EndMessage()
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buffer.AsSpan(_messageStart), (uint)(Length - _messageStart));
        _messageStart = -1;
        Count++;
    }

    /// <summary>Sets extra flags on the message that starts at <paramref name="offset"/> (e.g. ACK on a batch's last).</summary>
    public void AddFlags(int offset, ushort flags)
    {
        var span = _buffer.AsSpan(offset + 6, 2);
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(span) | flags));
    }

    /// <summary>Raw bytes (a family header such as ifinfomsg), padded to 4.</summary>
    public Span<byte> Struct(int size) => Reserve(Align(size))[..size];

    public void Attribute(ushort type, ReadOnlySpan<byte> value)
    {
        var span = Reserve(Align(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(span, (ushort)(4 + value.Length));
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], type);
        value.CopyTo(span[4..]);
    }

    public void AttributeU32(ushort type, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(bytes, value);
        Attribute(type, bytes);
    }

    public void AttributeU8(ushort type, byte value) => Attribute(type, [value]);

    /// <summary>A u16 in network byte order (ports).</summary>
    public void AttributeBe16(ushort type, ushort value)
    {
        Span<byte> bytes = stackalloc byte[2];
        BinaryPrimitives.WriteUInt16BigEndian(bytes, value);
        Attribute(type, bytes);
    }

    public void AttributeString(ushort type, string value)
    {
        Span<byte> bytes = stackalloc byte[value.Length + 1];
        for (var i = 0; i < value.Length; i++) bytes[i] = (byte)value[i];
        bytes[^1] = 0;
        Attribute(type, bytes);
    }

    /// <summary>NLA_F_NESTED: nf_tables and other strict families expect it on every nest.</summary>
    public const ushort Nested = 0x8000;

    public void AttributeBe32(ushort type, uint value)
    {
        Span<byte> bytes = stackalloc byte[4];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, value);
        Attribute(type, bytes);
    }

    public void AttributeBe64(ushort type, ulong value)
    {
        Span<byte> bytes = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64BigEndian(bytes, value);
        Attribute(type, bytes);
    }

    public void BeginNested(ushort type)
    {
        _nests.Push(Length);
        var span = Reserve(4);
        BinaryPrimitives.WriteUInt16LittleEndian(span[2..], type);
    }

    public void EndNested()
    {
        var start = _nests.Pop();
        BinaryPrimitives.WriteUInt16LittleEndian(_buffer.AsSpan(start), (ushort)(Length - start));
    }

    public static int Align(int length) => (length + 3) & ~3;

    private Span<byte> Reserve(int size)
    {
        if (Length + size > _buffer.Length)
        {
            Array.Resize(ref _buffer, Math.Max(_buffer.Length * 2, Length + size));
        }
        var span = _buffer.AsSpan(Length, size);
        span.Clear();
        Length += size;
        return span;
    }
}
