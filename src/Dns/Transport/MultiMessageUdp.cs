using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Transport;

/// <summary>
/// Linux UDP loop with recvmmsg/sendmmsg: one system call takes every datagram waiting (up to
/// <see cref="Batch"/>) and one sends all their answers, as NSD and Knot do. Buffers live in
/// native memory allocated once per loop; nothing is allocated per query. A receive timeout
/// (SO_RCVTIMEO) lets the loop notice shutdown.
/// <para>
/// On a socket bound to a wildcard address (0.0.0.0, [::]) each answer leaves from the address
/// its query was sent to (RFC 2181 §4.1; clients drop answers from any other): the kernel hands
/// over each datagram's destination (IP_PKTINFO, IPV6_PKTINFO, see
/// <see cref="EnableDestinationAddresses"/>) and the reply passes it back as its source.
/// </para>
/// </summary>
internal sealed unsafe class MultiMessageUdp : IDisposable
{
    public const int Batch = 32;
    private const int RequestSize = 4096;
    private const int AddressSize = 128;
    // Room for the packet information messages (CMSG_SPACE of 12 and 20 bytes): an IPv6 socket
    // gets both IPV6_PKTINFO (a mapped address) and IP_PKTINFO for an IPv4 datagram.
    private const int ControlSize = 128;
    private const int SolIp = 0, SolIpv6 = 41, IpPktInfo = 8, Ipv6RecvPktInfo = 49, Ipv6PktInfo = 50;
    private const int MsgWaitForOne = 0x10000;
    private const int MsgTrunc = 0x20;

    private readonly Socket _socket;
    private readonly QueryHandler _handler;
    private readonly int _responseSize;
    private readonly byte* _requests;
    private readonly byte* _responses;
    private readonly byte* _addresses;
    private readonly byte* _controls;
    private readonly bool _destinations;
    private readonly IoVec* _requestVecs;
    private readonly IoVec* _responseVecs;
    private readonly MMsgHdr* _received;
    private readonly MMsgHdr* _replies;

    private readonly Action<byte[], SocketAddress, byte[]?> _forward;

    /// <param name="destinations">The socket delivers each datagram's destination address (see <see cref="EnableDestinationAddresses"/>).</param>
    /// <param name="forward">Takes a query to forward, its client and the destination to answer from (null when the socket is bound to one address).</param>
    public MultiMessageUdp(Socket socket, QueryHandler handler, int maxUdpPayload, bool destinations, Action<byte[], SocketAddress, byte[]?> forward)
    {
        _forward = forward;
        _destinations = destinations;
        _socket = socket;
        _handler = handler;
        _responseSize = Math.Max(512, maxUdpPayload);
        _requests = (byte*)NativeMemory.Alloc(Batch * RequestSize);
        _responses = (byte*)NativeMemory.Alloc((nuint)(Batch * _responseSize));
        _addresses = (byte*)NativeMemory.AllocZeroed(Batch * AddressSize);
        _controls = (byte*)NativeMemory.AllocZeroed(Batch * ControlSize);
        _requestVecs = (IoVec*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(IoVec)));
        _responseVecs = (IoVec*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(IoVec)));
        _received = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(MMsgHdr)));
        _replies = (MMsgHdr*)NativeMemory.AllocZeroed((nuint)(Batch * sizeof(MMsgHdr)));
        for (var i = 0; i < Batch; i++)
        {
            _requestVecs[i] = new IoVec { Base = _requests + i * RequestSize, Length = RequestSize };
        }
    }

    /// <summary>Serves until cancelled or the socket closes.</summary>
    public void Run(CancellationToken cancellationToken)
    {
        var fd = (int)_socket.SafeHandle.DangerousGetHandle();
        while (!cancellationToken.IsCancellationRequested)
        {
            for (var i = 0; i < Batch; i++)
            {
                ref var header = ref _received[i].Header;
                header.Name = _addresses + i * AddressSize;
                header.NameLength = AddressSize;
                header.Iov = _requestVecs + i;
                header.IovLength = 1;
                header.Flags = 0;
                header.Control = _destinations ? _controls + i * ControlSize : null;
                header.ControlLength = _destinations ? ControlSize : 0u;
            }
            var count = recvmmsg(fd, _received, Batch, MsgWaitForOne, null);
            if (count <= 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno == 4) continue; // EINTR
                if (errno == 11)
                {
                    // EAGAIN: the receive timeout passed; or the socket was made non-blocking
                    // (an async operation on it), when waiting here keeps the loop from spinning.
                    var wait = new PollFd { Fd = fd, Events = PollIn };
                    poll(&wait, 1, 250);
                    continue;
                }
                return; // EBADF and friends: the socket is closed
            }
            var replies = 0;
            for (var i = 0; i < count; i++)
            {
                var request = new Span<byte>(_requests + i * RequestSize, (int)Math.Min(_received[i].Length, RequestSize));
                if ((_received[i].Header.Flags & MsgTrunc) != 0 && request.Length >= QueryParser.HeaderLength)
                {
                    // A query larger than any we accept, of which the buffer holds the start: its
                    // header alone, with no sections, gets FORMERR (RFC 1035 §4.1.1) rather than silence.
                    request = request[..QueryParser.HeaderLength];
                    request[4..].Clear();
                }
                var response = new Span<byte>(_responses + replies * _responseSize, _responseSize);
                var from = new ReadOnlySpan<byte>(_addresses + i * AddressSize, (int)Math.Min(_received[i].Header.NameLength, AddressSize));
                var length = _handler.Handle(request, response, tcp: false, from);
                if (length == QueryHandler.Forward)
                {
                    var client = new SocketAddress(_socket.AddressFamily, (int)_received[i].Header.NameLength);
                    new ReadOnlySpan<byte>(_addresses + i * AddressSize, client.Size).CopyTo(client.Buffer.Span);
                    _forward(request.ToArray(), client, _destinations ? Control(i).ToArray() : null);
                    continue;
                }
                if (length == 0) continue;
                _responseVecs[replies] = new IoVec { Base = _responses + replies * _responseSize, Length = (nuint)length };
                ref var reply = ref _replies[replies].Header;
                reply.Name = _addresses + i * AddressSize;
                reply.NameLength = _received[i].Header.NameLength;
                reply.Iov = _responseVecs + replies;
                reply.IovLength = 1;
                if (_destinations)
                {
                    AnswerFrom(Control(i));
                    reply.Control = _controls + i * ControlSize;
                    reply.ControlLength = _received[i].Header.ControlLength;
                }
                replies++;
            }
            for (var sent = 0; sent < replies;)
            {
                var n = sendmmsg(fd, _replies + sent, (uint)(replies - sent), 0);
                if (n <= 0)
                {
                    // A send error concerns one datagram (e.g. an unreachable client): skip it.
                    sent++;
                    continue;
                }
                sent += n;
            }
        }
    }

    /// <summary>The control messages the kernel delivered with received datagram <paramref name="i"/>.</summary>
    private Span<byte> Control(int i) => new(_controls + i * ControlSize, (int)Math.Min(_received[i].Header.ControlLength, (nuint)ControlSize));

    /// <summary>
    /// Makes a received packet-information message fit to send: its destination address becomes
    /// the answer's source. The interface index is cleared (the routing table picks the way
    /// back, as for any other answer) except for an IPv6 link-local address, which needs it.
    /// </summary>
    private static void AnswerFrom(Span<byte> control)
    {
        // struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; } then the data, 8-aligned.
        const int HeaderSize = 16;
        for (var offset = 0; offset + HeaderSize <= control.Length;)
        {
            var length = (int)BinaryPrimitives.ReadUInt64LittleEndian(control[offset..]);
            if (length < HeaderSize || offset + length > control.Length) return;
            var level = BinaryPrimitives.ReadInt32LittleEndian(control[(offset + 8)..]);
            var type = BinaryPrimitives.ReadInt32LittleEndian(control[(offset + 12)..]);
            var data = control.Slice(offset + HeaderSize, length - HeaderSize);
            if (level == SolIp && type == IpPktInfo && data.Length >= 12)
            {
                // struct in_pktinfo { int ipi_ifindex; in_addr ipi_spec_dst; in_addr ipi_addr; }
                data[..4].Clear();
            }
            else if (level == SolIpv6 && type == Ipv6PktInfo && data.Length >= 20 && !(data[0] == 0xfe && (data[1] & 0xc0) == 0x80))
            {
                // struct in6_pktinfo { in6_addr ipi6_addr; int ipi6_ifindex; }
                data.Slice(16, 4).Clear();
            }
            offset += (length + 7) & ~7;
        }
    }

    /// <summary>
    /// Asks the kernel for each datagram's destination address (IP_PKTINFO; IPV6_RECVPKTINFO too
    /// on an IPv6 socket, whose IPv4 clients arrive as mapped addresses with IP_PKTINFO).
    /// </summary>
    public static void EnableDestinationAddresses(Socket socket)
    {
        var on = 1;
        var fd = (int)socket.SafeHandle.DangerousGetHandle();
        if (setsockopt(fd, SolIp, IpPktInfo, &on, sizeof(int)) != 0
            || (socket.AddressFamily == AddressFamily.InterNetworkV6 && setsockopt(fd, SolIpv6, Ipv6RecvPktInfo, &on, sizeof(int)) != 0))
        {
            throw new SocketException(Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Sends one datagram to <paramref name="client"/> from the destination in <paramref name="control"/> (as the loop's answers leave).</summary>
    public static void SendFrom(Socket socket, ReadOnlySpan<byte> payload, SocketAddress client, byte[] control)
    {
        AnswerFrom(control);
        var address = client.Buffer.Span[..client.Size];
        fixed (byte* data = payload)
        fixed (byte* name = address)
        fixed (byte* controls = control)
        {
            var vec = new IoVec { Base = data, Length = (nuint)payload.Length };
            var header = new MsgHdr { Name = name, NameLength = (uint)address.Length, Iov = &vec, IovLength = 1, Control = controls, ControlLength = (nuint)control.Length };
            if (sendmsg((int)socket.SafeHandle.DangerousGetHandle(), &header, 0) < 0)
            {
                throw new SocketException(Marshal.GetLastPInvokeError());
            }
        }
    }

    /// <summary>Lets a blocked receive return periodically so cancellation is seen.</summary>
    public static void SetReceiveTimeout(Socket socket, TimeSpan timeout) =>
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveTimeout, (int)timeout.TotalMilliseconds);

    public void Dispose()
    {
        NativeMemory.Free(_requests);
        NativeMemory.Free(_responses);
        NativeMemory.Free(_addresses);
        NativeMemory.Free(_controls);
        NativeMemory.Free(_requestVecs);
        NativeMemory.Free(_responseVecs);
        NativeMemory.Free(_received);
        NativeMemory.Free(_replies);
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct IoVec
    {
        public byte* Base;
        public nuint Length;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MsgHdr
    {
        public byte* Name;
        public uint NameLength;
        public IoVec* Iov;
        public nuint IovLength;
        public void* Control;
        public nuint ControlLength;
        public int Flags;
    }

    [StructLayout(LayoutKind.Sequential)]
    private struct MMsgHdr
    {
        public MsgHdr Header;
        public uint Length;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int recvmmsg(int fd, MMsgHdr* messages, uint count, int flags, void* timeout);

    [DllImport("libc", SetLastError = true)]
    private static extern int sendmmsg(int fd, MMsgHdr* messages, uint count, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern nint sendmsg(int fd, MsgHdr* message, int flags);

    [DllImport("libc", SetLastError = true)]
    private static extern int setsockopt(int fd, int level, int name, void* value, uint length);

    private const short PollIn = 1;

    [StructLayout(LayoutKind.Sequential)]
    private struct PollFd
    {
        public int Fd;
        public short Events;
        public short Revents;
    }

    [DllImport("libc", SetLastError = true)]
    private static extern int poll(PollFd* fds, nuint count, int timeoutMs);
}
