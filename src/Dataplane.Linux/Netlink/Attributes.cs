using System.Buffers.Binary;

namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>Reads the attributes of a message (or a nested attribute) by type.</summary>
internal readonly ref struct Attributes(ReadOnlySpan<byte> span)
{
    private readonly ReadOnlySpan<byte> _span = span;

    public bool TryGet(ushort type, out ReadOnlySpan<byte> value)
    {
        var span = _span;
        while (span.Length >= 4)
        {
            var length = BinaryPrimitives.ReadUInt16LittleEndian(span);
            var attributeType = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(span[2..]) & 0x3FFF); // minus NESTED/BYTEORDER bits
            if (length < 4 || length > span.Length) break;
            if (attributeType == type)
            {
                value = span[4..length];
                return true;
            }
            span = span[Math.Min(span.Length, MessageWriter.Align(length))..];
        }
        value = default;
        return false;
    }

    public string? String(ushort type) =>
        TryGet(type, out var value) ? System.Text.Encoding.ASCII.GetString(value.TrimEnd((byte)0)) : null;

    /// <summary>Takes the next attribute off <paramref name="cursor"/> (for lists of repeated attributes).</summary>
    public static bool Next(ref ReadOnlySpan<byte> cursor, out ushort type, out ReadOnlySpan<byte> value)
    {
        type = 0;
        value = default;
        if (cursor.Length < 4) return false;
        var length = BinaryPrimitives.ReadUInt16LittleEndian(cursor);
        if (length < 4 || length > cursor.Length) return false;
        type = (ushort)(BinaryPrimitives.ReadUInt16LittleEndian(cursor[2..]) & 0x3FFF);
        value = cursor[4..length];
        cursor = cursor[Math.Min(cursor.Length, MessageWriter.Align(length))..];
        return true;
    }

    public uint? Be32(ushort type) => TryGet(type, out var value) && value.Length >= 4 ? BinaryPrimitives.ReadUInt32BigEndian(value) : null;

    public ulong? Be64(ushort type) => TryGet(type, out var value) && value.Length >= 8 ? BinaryPrimitives.ReadUInt64BigEndian(value) : null;

    public uint? U32(ushort type) => TryGet(type, out var value) && value.Length >= 4 ? BinaryPrimitives.ReadUInt32LittleEndian(value) : null;
}
