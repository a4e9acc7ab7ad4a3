using System.Buffers.Binary;
using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Tests;

public sealed class MessageEncodingTests
{
    [Fact]
    public void Message_HeaderAttributesAndNesting_AreLaidOutAsTheKernelExpects()
    {
        var w = new MessageWriter();
        w.BeginMessage(type: 16, flags: 0x405, sequence: 7);
        w.Struct(16)[0] = 0;
        w.AttributeString(3, "vx0");
        w.BeginNested(18);
        w.AttributeString(1, "vxlan");
        w.EndNested();
        w.EndMessage();

        var bytes = w.Written.ToArray();
        // nlmsghdr: length, type, flags, sequence, port id.
        Assert.Equal((uint)bytes.Length, BinaryPrimitives.ReadUInt32LittleEndian(bytes));
        Assert.Equal(16, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(4)));
        Assert.Equal(0x405, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(6)));
        Assert.Equal(7u, BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8)));
        // "vx0\0" attribute: length 8, type 3, no padding needed.
        Assert.Equal([8, 0, 3, 0, (byte)'v', (byte)'x', (byte)'0', 0], bytes[32..40]);
        // Nest: header 4 + "vxlan\0" (4 + 6 = 10, padded to 12) = length 14 counted, 16 on the wire.
        Assert.Equal(16, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(40)));
        Assert.Equal(18, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(42)));
        Assert.Equal(10, BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(44)));
        Assert.Equal(56, bytes.Length);
        Assert.Equal(0, bytes.Length % 4);
    }

    [Fact]
    public void AddFlags_SetsAckOnOneMessageOfABatch()
    {
        var w = new MessageWriter();
        w.BeginMessage(28, 0x1, 1);
        w.EndMessage();
        var second = w.Length;
        w.BeginMessage(28, 0x1, 2);
        w.EndMessage();

        w.AddFlags(second, 0x4);

        Assert.Equal(0x1, BinaryPrimitives.ReadUInt16LittleEndian(w.Written[6..]));
        Assert.Equal(0x5, BinaryPrimitives.ReadUInt16LittleEndian(w.Written[(second + 6)..]));
    }

    [Fact]
    public void Attributes_FindsByTypeAcrossPadding_AndIgnoresTheNestedFlag()
    {
        var w = new MessageWriter();
        w.BeginMessage(16, 1, 1);
        w.AttributeString(3, "a");   // padded from 6 to 8
        w.AttributeU32(4, 1450);
        w.EndMessage();
        var payload = w.Written[16..].ToArray();
        payload[3] |= 0x80; // NLA_F_NESTED on the first attribute's type, as the kernel may send it
        var attributes = new Attributes(payload);

        Assert.Equal("a", attributes.String(3));
        Assert.Equal(1450u, attributes.U32(4));
        Assert.Null(attributes.U32(9));
    }

    [Theory]
    [InlineData(NetlinkException.ENOENT, true, false)]
    [InlineData(NetlinkException.ESRCH, true, false)]
    [InlineData(NetlinkException.ENODEV, true, false)]
    [InlineData(NetlinkException.EEXIST, false, true)]
    [InlineData(NetlinkException.EINVAL, false, false)]
    public void Errors_AreClassifiedByErrno(int errno, bool notFound, bool exists)
    {
        var error = new NetlinkException(errno, "test");
        Assert.Equal(notFound, error.IsNotFound);
        Assert.Equal(exists, error.IsExists);
        Assert.Equal(errno, error.Errno);
    }
}
