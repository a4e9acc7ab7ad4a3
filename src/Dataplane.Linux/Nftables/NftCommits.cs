using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Dataplane.Linux.Nftables;

/// <summary>
/// Tells when an nf_tables transaction commits in this network namespace, from anyone: the kernel
/// ends every committed batch with a new-generation message on the nftables multicast group.
/// For measuring how soon a change reaches the kernel, without polling it.
/// </summary>
public sealed class NftCommits : IDisposable
{
    private const int GroupNftables = 7;
    private const ushort NewGeneration = (Nft.SubsysNftables << 8) | 15;
    private readonly NetlinkSocket _socket;

    private NftCommits(NetlinkSocket socket) => _socket = socket;

    /// <summary>Subscribes in the calling thread's network namespace.</summary>
    public static NftCommits Subscribe()
    {
        var socket = NetlinkSocket.Open(NetlinkSocket.NetlinkNetfilter);
        socket.JoinGroup(GroupNftables);
        return new NftCommits(socket);
    }

    /// <summary>Waits for the next commit; false when none came within <paramref name="timeout"/>.</summary>
    public bool WaitNext(TimeSpan timeout) => _socket.WaitFor(NewGeneration, timeout);

    public void Dispose() => _socket.Dispose();
}
