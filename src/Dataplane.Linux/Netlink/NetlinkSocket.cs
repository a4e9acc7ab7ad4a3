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

    public const int NetlinkNetfilter = 12;
    private const int SolSocket = 1, SoSndbufForce = 32, SoRcvbufForce = 33;

    public static NetlinkSocket Open(int protocol = NetlinkRoute)
    {
        var fd = socket(AfNetlink, SockRaw | SockCloexec, protocol);
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
    /// Raises both buffers past the sysctl caps (root only; SO_*BUFFORCE). An nf_tables
    /// transaction must reach the kernel in one send, so the send buffer must hold all of it.
    /// </summary>
    public void ForceBuffers(int bytes)
    {
        _socket.SetRawSocketOption(SolSocket, SoSndbufForce, BitConverter.GetBytes(bytes));
        _socket.SetRawSocketOption(SolSocket, SoRcvbufForce, BitConverter.GetBytes(bytes));
    }

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
            var span = _receive.AsSpan(0, _socket.Receive(_receive));
            while (TryNext(ref span, out var type, out var sequence, out var message))
            {
                if (type == Rtm.NlmsgError && message.Length >= 20)
                {
                    var error = -BinaryPrimitives.ReadInt32LittleEndian(message[16..]);
                    if (error != 0) failures.Add((sequence, error, ExtendedReason(message)));
                    if (sequence == lastSequence) return failures;
                }
            }
        }
    }

    /// <summary>Takes the next whole message (header included) off a received datagram.</summary>
    private static bool TryNext(ref Span<byte> span, out ushort type, out uint sequence, out ReadOnlySpan<byte> message)
    {
        type = 0;
        sequence = 0;
        message = default;
        if (span.Length < 16) return false;
        var length = (int)BinaryPrimitives.ReadUInt32LittleEndian(span);
        if (length < 16 || length > span.Length) return false;
        type = BinaryPrimitives.ReadUInt16LittleEndian(span[4..]);
        sequence = BinaryPrimitives.ReadUInt32LittleEndian(span[8..]);
        message = span[..length];
        span = span[Math.Min(span.Length, MessageWriter.Align(length))..];
        return true;
    }

    /// <summary>Sends a dump request and hands every reply message (type, payload) to <paramref name="onMessage"/>.</summary>
    public void Dump(ReadOnlySpan<byte> request, uint sequence, MessageHandler onMessage)
    {
        _socket.Send(request);
        while (true)
        {
            var span = _receive.AsSpan(0, _socket.Receive(_receive));
            while (TryNext(ref span, out var type, out var replySequence, out var message))
            {
                if (replySequence != sequence) continue;
                if (type == Rtm.NlmsgDone) return;
                if (type == Rtm.NlmsgError)
                {
                    var error = -BinaryPrimitives.ReadInt32LittleEndian(message[16..]);
                    if (error != 0) throw new NetlinkException(error, "dump", ExtendedReason(message));
                    return;
                }
                onMessage(type, message[16..]);
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

    /// <summary>Subscribes to a multicast group (NETLINK_ADD_MEMBERSHIP); the socket is bound first, as delivery needs.</summary>
    public void JoinGroup(int group)
    {
        Span<byte> address = stackalloc byte[12]; // sockaddr_nl: family, pad, pid 0 (the kernel assigns one), groups 0
        BinaryPrimitives.WriteUInt16LittleEndian(address, AfNetlink);
        if (bind((int)_socket.Handle, address, address.Length) < 0)
        {
            throw new NetlinkException(Marshal.GetLastPInvokeError(), "bind(AF_NETLINK)");
        }
        _socket.SetRawSocketOption(SolNetlink, 1, BitConverter.GetBytes(group));
    }

    /// <summary>Waits up to <paramref name="timeout"/> (zero: only what already arrived) for a message of <paramref name="type"/>; false on timeout.</summary>
    public bool WaitFor(ushort type, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            if (!_socket.Poll(left > TimeSpan.Zero ? left : TimeSpan.Zero, SelectMode.SelectRead)) return false;
            var span = _receive.AsSpan(0, _socket.Receive(_receive));
            while (TryNext(ref span, out var received, out _, out _))
            {
                if (received == type) return true;
            }
        }
    }

    public void Dispose() => _socket.Dispose();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int socket(int domain, int type, int protocol);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int bind(int fd, ReadOnlySpan<byte> address, int length);
}
