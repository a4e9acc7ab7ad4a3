using System.Buffers.Binary;
using System.Net.Sockets;
using System.Runtime.InteropServices;

namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>
/// An AF_NETLINK/NETLINK_ROUTE socket. .NET's Socket constructor refuses the family, so the
/// descriptor comes from libc socket() and is wrapped in a Socket. A socket belongs to the network
/// namespace it was created in, for its whole life.
/// </summary>
internal sealed partial class NetlinkSocket : IDisposable
{
    private const int AfNetlink = 16, SockRaw = 3, SockCloexec = 0x80000, NetlinkRoute = 0;
    private const int SolNetlink = 270, NetlinkCapAck = 10, NetlinkExtAck = 11, NlmFCapped = 0x100, NlmsgerrAttrMsg = 1;
    private readonly Socket _socket;
    private readonly byte[] _receive = new byte[1 << 20];
    private uint _sequence = (uint)Environment.TickCount;

    private NetlinkSocket(Socket socket) => _socket = socket;

    public static NetlinkSocket Open()
    {
        var fd = socket(AfNetlink, SockRaw | SockCloexec, NetlinkRoute);
        if (fd < 0)
        {
            throw new NetlinkException(Marshal.GetLastPInvokeError(), "socket(AF_NETLINK)");
        }
        var wrapped = new Socket(new SafeSocketHandle(fd, ownsHandle: true));
        wrapped.ReceiveBufferSize = 4 * 1024 * 1024;
        wrapped.SendBufferSize = 4 * 1024 * 1024;
        // Extended ACKs: errors carry the kernel's own explanation; capped: no echo of the request.
        wrapped.SetRawSocketOption(SolNetlink, NetlinkExtAck, BitConverter.GetBytes(1));
        wrapped.SetRawSocketOption(SolNetlink, NetlinkCapAck, BitConverter.GetBytes(1));
        return new NetlinkSocket(wrapped);
    }

    public uint NextSequence() => ++_sequence;

    /// <summary>
    /// Sends a batch whose last message asks for an ACK and reads replies until that ACK (or its
    /// error) arrives. Earlier messages are answered only if they fail (no ACK requested), and
    /// each failure is reported with its sequence number.
    /// </summary>
    public List<(uint Sequence, int Errno, string? Reason)> Transact(ReadOnlySpan<byte> batch, uint lastSequence)
    {
        _socket.Send(batch);
        var failures = new List<(uint, int, string?)>();
        while (true)
        {
            var length = _socket.Receive(_receive);
            var span = _receive.AsSpan(0, length);
            while (span.Length >= 16)
            {
                var messageLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
                if (messageLength < 16 || messageLength > span.Length) break;
                var type = BinaryPrimitives.ReadUInt16LittleEndian(span[4..]);
                var sequence = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
                if (type == Rtm.NlmsgError && messageLength >= 20)
                {
                    var error = -BinaryPrimitives.ReadInt32LittleEndian(span[16..]);
                    if (error != 0) failures.Add((sequence, error, ExtendedReason(span[..messageLength])));
                    if (sequence == lastSequence) return failures;
                }
                span = span[Math.Min(span.Length, MessageWriter.Align(messageLength))..];
            }
        }
    }

    /// <summary>Sends a dump request and hands every reply message (type, payload) to <paramref name="onMessage"/>.</summary>
    public void Dump(ReadOnlySpan<byte> request, uint sequence, MessageHandler onMessage)
    {
        _socket.Send(request);
        while (true)
        {
            var length = _socket.Receive(_receive);
            var span = _receive.AsSpan(0, length);
            while (span.Length >= 16)
            {
                var messageLength = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
                if (messageLength < 16 || messageLength > span.Length) break;
                var type = BinaryPrimitives.ReadUInt16LittleEndian(span[4..]);
                var replySequence = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
                if (replySequence == sequence)
                {
                    if (type == Rtm.NlmsgDone) return;
                    if (type == Rtm.NlmsgError)
                    {
                        var error = -BinaryPrimitives.ReadInt32LittleEndian(span[16..]);
                        if (error != 0) throw new NetlinkException(error, "dump");
                        return;
                    }
                    onMessage(type, span[16..messageLength]);
                }
                span = span[Math.Min(span.Length, MessageWriter.Align(messageLength))..];
            }
        }
    }

    /// <summary>The NLMSGERR_ATTR_MSG text of an error message, when the kernel gave one.</summary>
    private static string? ExtendedReason(ReadOnlySpan<byte> message)
    {
        var flags = BinaryPrimitives.ReadUInt16LittleEndian(message[6..]);
        // nlmsghdr (16) + error (4) + the request's header (16), plus its payload unless capped.
        var offset = 36;
        if ((flags & NlmFCapped) == 0 && message.Length >= 36) offset = 20 + (int)BinaryPrimitives.ReadUInt32LittleEndian(message[20..]);
        if (offset >= message.Length) return null;
        return new Attributes(message[MessageWriter.Align(offset)..]).String(NlmsgerrAttrMsg);
    }

    public delegate void MessageHandler(ushort type, ReadOnlySpan<byte> payload);

    public void Dispose() => _socket.Dispose();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);
}
