using System.Net;
using System.Numerics;

namespace ControlPlane.Grains.Ipam;

/// <summary>
/// Address management for one address family of one network, in per-node blocks
/// (Calico-style, strict affinity): the network prefix is cut into blocks of equal size; a node
/// allocates only from blocks assigned to it, and gets a new block when its blocks are full.
/// Each node therefore needs one route per block of every other node: O(nodes), not
/// O(endpoints). The network address, the gateway (the first host address, an anycast gateway
/// present on every node), for IPv4 the broadcast address, and the first address of every block
/// (the VTEP address of the node holding it) are never handed out.
/// Every held address names its holder, and a release by anyone else is ignored: a release that
/// reaches a freshly rebuilt pool can never free an address that was handed out again since.
/// Pure and single-threaded: the network grain owns it.
/// </summary>
public sealed class BlockPool
{
    private readonly IpPrefix _network;
    private readonly int _blockLength;
    private readonly Dictionary<long, Block> _assigned = [];
    private readonly Dictionary<UInt128, string> _holders = [];
    private readonly long _blockCount;
    private long _nextFreeHint;

    public BlockPool(IpPrefix network, int blockLength)
    {
        _network = network;
        _blockLength = blockLength;
        _blockCount = (long)Math.Min((ulong)(UInt128.One << (blockLength - network.Length)), long.MaxValue);
        Gateway = network.Network + 1;
    }

    public UInt128 Gateway { get; }

    public IPAddress GatewayAddress => IpPrefix.ToAddress(Gateway, _network.Family);

    /// <summary>Addresses currently held.</summary>
    public long Allocated { get; private set; }

    private UInt128 BlockSize => UInt128.One << (_network.Bits - _blockLength);

    public IpPrefix BlockPrefix(long index) => new(_network.Network + (UInt128)index * BlockSize, _blockLength, _network.Family);

    /// <summary>Records a block as assigned to a node (from persisted state).</summary>
    public void AssignBlock(IpPrefix block, string node)
    {
        var index = (long)((block.Network - _network.Network) / BlockSize);
        _assigned[index] = new Block(index, node, (int)BlockSize, this);
    }

    /// <summary>Marks an address held by <paramref name="holder"/> (from the store). Returns false if it is not in an assigned block.</summary>
    public bool MarkHeld(IPAddress address, string holder)
    {
        var value = IpPrefix.ToNumber(address);
        if (!_network.Contains(value) || address.AddressFamily != _network.Family) return false;
        var offset = value - _network.Network;
        if (!_assigned.TryGetValue((long)(offset / BlockSize), out var block)) return false;
        if (block.Set((int)(offset % BlockSize))) Allocated++;
        _holders[value] = holder;
        return true;
    }

    /// <summary>Who holds an address, or null.</summary>
    public string? HolderOf(IPAddress address) =>
        address.AddressFamily == _network.Family ? _holders.GetValueOrDefault(IpPrefix.ToNumber(address)) : null;

    /// <summary>
    /// Takes a free address from one of <paramref name="node"/>'s blocks. Returns null when the
    /// node's blocks are full; <see cref="TryAssignFreeBlock"/> then gives it another.
    /// </summary>
    public IPAddress? TryAllocate(string node, string holder)
    {
        foreach (var block in _assigned.Values)
        {
            if (block.Node == node && block.TryTake(out var offset))
            {
                Allocated++;
                var value = BlockPrefix(block.Index).Network + (UInt128)offset;
                _holders[value] = holder;
                return IpPrefix.ToAddress(value, _network.Family);
            }
        }
        return null;
    }

    /// <summary>
    /// Takes a requested address for <paramref name="holder"/> on <paramref name="node"/>: it must
    /// not be reserved or held, and lie in one of the node's blocks. A free block is not assigned
    /// here (the caller makes the assignment durable first, then asks again).
    /// </summary>
    public RequestResult TryTake(IPAddress address, string node, string holder)
    {
        var value = IpPrefix.ToNumber(address);
        if (address.AddressFamily != _network.Family || !_network.Contains(value)) return new(RequestOutcome.Outside);
        var offset = value - _network.Network;
        var index = (long)(offset / BlockSize);
        if (IsReserved(value) || offset % BlockSize == 0) return new(RequestOutcome.Reserved);
        if (!_assigned.TryGetValue(index, out var block)) return new(RequestOutcome.BlockFree, Block: BlockPrefix(index));
        if (block.Node != node) return new(RequestOutcome.OtherNode, block.Node, BlockPrefix(index));
        if (!block.Set((int)(offset % BlockSize))) return new(RequestOutcome.Held, _holders.GetValueOrDefault(value));
        Allocated++;
        _holders[value] = holder;
        return new(RequestOutcome.Taken);
    }

    /// <summary>Assigns the lowest free block to a node, or returns null when none is left.</summary>
    public IpPrefix? TryAssignFreeBlock(string node)
    {
        for (var i = 0L; i < _blockCount; i++)
        {
            var index = (_nextFreeHint + i) % _blockCount;
            if (!_assigned.ContainsKey(index))
            {
                _nextFreeHint = index + 1;
                var block = BlockPrefix(index);
                AssignBlock(block, node);
                return block;
            }
        }
        return null;
    }

    /// <summary>Frees an address if <paramref name="holder"/> holds it; returns whether it did.</summary>
    public bool Release(IPAddress address, string holder)
    {
        if (address.AddressFamily != _network.Family) return false;
        var value = IpPrefix.ToNumber(address);
        if (!_network.Contains(value) || !_holders.TryGetValue(value, out var current) || current != holder) return false;
        _holders.Remove(value);
        var offset = value - _network.Network;
        if (_assigned.TryGetValue((long)(offset / BlockSize), out var block) && block.Clear((int)(offset % BlockSize)))
        {
            Allocated--;
        }
        return true;
    }

    /// <summary>The pool's address family.</summary>
    public System.Net.Sockets.AddressFamily Family => _network.Family;

    /// <summary>The network prefix the pool serves.</summary>
    public IpPrefix Network => _network;

    private bool IsReserved(UInt128 address) =>
        address == _network.Network || address == Gateway ||
        (_network.Family == System.Net.Sockets.AddressFamily.InterNetwork && address == _network.Last);

    private sealed class Block
    {
        private readonly ulong[] _used;
        private readonly int _size;
        private int _next;

        public Block(long index, string node, int size, BlockPool pool)
        {
            Index = index;
            Node = node;
            _size = size;
            _used = new ulong[(size + 63) / 64];
            var start = pool.BlockPrefix(index).Network;
            for (var i = 0; i < size; i++)
            {
                if (i == 0 || pool.IsReserved(start + (UInt128)i)) Set(i);
            }
        }

        public long Index { get; }

        public string Node { get; }

        public bool Set(int offset)
        {
            ref var word = ref _used[offset >> 6];
            var bit = 1UL << (offset & 63);
            if ((word & bit) != 0) return false;
            word |= bit;
            return true;
        }

        public bool Clear(int offset)
        {
            ref var word = ref _used[offset >> 6];
            var bit = 1UL << (offset & 63);
            if ((word & bit) == 0) return false;
            word &= ~bit;
            return true;
        }

        public bool TryTake(out int offset)
        {
            // Round-robin from the last allocation, so a just-released address is not reused at once.
            for (var n = 0; n < _used.Length; n++)
            {
                var w = (_next / 64 + n) % _used.Length;
                var free = ~_used[w];
                if (w == _used.Length - 1 && _size % 64 != 0) free &= (1UL << (_size % 64)) - 1;
                if (free != 0)
                {
                    offset = w * 64 + BitOperations.TrailingZeroCount(free);
                    Set(offset);
                    _next = (offset + 1) % _size;
                    return true;
                }
            }
            offset = -1;
            return false;
        }
    }
}
