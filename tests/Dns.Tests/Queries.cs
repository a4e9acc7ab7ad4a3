using System.Buffers.Binary;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Tests;

/// <summary>Builds query messages for tests.</summary>
internal static class Queries
{
    public static byte[] Build(string name, DnsType type, ushort id = 0x1234, ushort? ednsSize = null, byte ednsVersion = 0, ushort @class = 1, ushort flags = 0x0100)
    {
        var encodedName = DnsName.Encode(name);
        var message = new List<byte>();
        var header = new byte[12];
        BinaryPrimitives.WriteUInt16BigEndian(header, id);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(2), flags);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(4), 1);
        BinaryPrimitives.WriteUInt16BigEndian(header.AsSpan(10), (ushort)(ednsSize is null ? 0 : 1));
        message.AddRange(header);
        message.AddRange(encodedName);
        message.AddRange([(byte)((ushort)type >> 8), (byte)type, (byte)(@class >> 8), (byte)@class]);
        if (ednsSize is { } size)
        {
            message.AddRange([0, 0, 41, (byte)(size >> 8), (byte)size, 0, ednsVersion, 0, 0, 0, 0]);
        }
        return [.. message];
    }

    /// <summary>An A query for <paramref name="name"/> answered by <paramref name="handler"/> as over UDP, decoded.</summary>
    public static DecodedResponse Ask(Handling.QueryHandler handler, string name)
    {
        var buffer = new byte[512];
        return DecodedResponse.Decode(buffer.AsSpan(0, handler.Handle(Build(name, DnsType.A), buffer, tcp: false)));
    }
}
