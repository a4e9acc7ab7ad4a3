using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;
using ControlPlane.Dns.Handling;

namespace ControlPlane.Dns.Transport;

/// <summary>
/// Linux UDP loop with recvmmsg/sendmmsg: one system call takes every datagram waiting (up to
/// <see cref="Batch"/>) and one sends all their answers, as NSD and Knot do. Buffers live in
/// native memory allocated once per loop; nothing is allocated per query. A receive timeout
/// (SO_RCVTIMEO) lets the loop notice shutdown.
/// </summary>
internal sealed unsafe class MultiMessageUdp : IDisposable
{
    public const int Batch = 32;
    private const int RequestSize = 4096;
    private const int AddressSize = 128;
    private const int MsgWaitForOne = 0x10000;
    private const int MsgTrunc = 0x20;

    private readonly Socket _socket;
    private readonly QueryHandler _handler;
    private readonly int _responseSize;
    private readonly byte* _requests;
    private readonly byte* _responses;
    private readonly byte* _addresses;
    private readonly IoVec* _requestVecs;
    private readonly IoVec* _responseVecs;
    private readonly MMsgHdr* _received;
    private readonly MMsgHdr* _replies;

    private readonly Action<byte[], SocketAddress> _forward;

    public MultiMessageUdp(Socket socket, QueryHandler handler, int maxUdpPayload, Action<byte[], SocketAddress> forward)
    {
        _forward = forward;
        _socket = socket;
        _handler = handler;
        _responseSize = Math.Max(512, maxUdpPayload);
        _requests = (byte*)NativeMemory.Alloc(Batch * RequestSize);
        _responses = (byte*)NativeMemory.Alloc((nuint)(Batch * _responseSize));
        _addresses = (byte*)NativeMemory.AllocZeroed(Batch * AddressSize);
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
            }
            var count = recvmmsg(fd, _received, Batch, MsgWaitForOne, null);
            if (count <= 0)
            {
                var errno = Marshal.GetLastPInvokeError();
                if (errno is 11 or 4) continue; // EAGAIN (receive timeout), EINTR
                return; // EBADF and friends: the socket is closed
            }
            var replies = 0;
            for (var i = 0; i < count; i++)
            {
                if ((_received[i].Header.Flags & MsgTrunc) != 0) continue; // a query larger than any we accept
                var request = new ReadOnlySpan<byte>(_requests + i * RequestSize, (int)_received[i].Length);
                var response = new Span<byte>(_responses + replies * _responseSize, _responseSize);
                var from = new ReadOnlySpan<byte>(_addresses + i * AddressSize, (int)Math.Min(_received[i].Header.NameLength, AddressSize));
                var length = _handler.Handle(request, response, tcp: false, from);
                if (length == QueryHandler.Forward)
                {
                    var client = new SocketAddress(_socket.AddressFamily, (int)_received[i].Header.NameLength);
                    new ReadOnlySpan<byte>(_addresses + i * AddressSize, client.Size).CopyTo(client.Buffer.Span);
                    _forward(request.ToArray(), client);
                    continue;
                }
                if (length == 0) continue;
                _responseVecs[replies] = new IoVec { Base = _responses + replies * _responseSize, Length = (nuint)length };
                ref var reply = ref _replies[replies].Header;
                reply.Name = _addresses + i * AddressSize;
                reply.NameLength = _received[i].Header.NameLength;
                reply.Iov = _responseVecs + replies;
                reply.IovLength = 1;
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

    /// <summary>Lets a blocked receive return periodically so cancellation is seen.</summary>
    public static void SetReceiveTimeout(Socket socket, TimeSpan timeout) =>
        socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReceiveTimeout, (int)timeout.TotalMilliseconds);

    public void Dispose()
    {
        NativeMemory.Free(_requests);
        NativeMemory.Free(_responses);
        NativeMemory.Free(_addresses);
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
}
