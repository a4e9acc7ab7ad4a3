using System.Net;
using System.Net.Sockets;

namespace ControlPlane.Grains.Ipam;

/// <summary>
/// Address management for one address family of one network, in per-node blocks
/// (Calico-style, strict affinity): the network prefix is cut into blocks of equal size; a node
/// allocates only from blocks assigned to it, and gets the lowest free block when its blocks are
/// full. Each node therefore needs one route per block of every other node: O(nodes), not
/// O(endpoints). The network address, the gateway (the first host address, an anycast gateway
/// present on every node), for IPv4 the broadcast address, and the first address of every block
/// (the VTEP address of the node holding it) are never handed out.
/// Every held address names its holder, and a release by anyone else is ignored: a release that
/// reaches a freshly rebuilt pool can never free an address that was handed out again since.
/// </summary>
/// <remarks>
/// One code path for both families: addresses, offsets, block indexes and counts are 128-bit, so
/// an IPv6 /48 cut into /122 blocks (2^74 of them) or into /64 blocks (2^64 addresses each) works
/// like an IPv4 /24. Memory and time depend on what is assigned and held, never on the size of
/// the space: block assignments are never taken back, so every block below the lowest-free
/// cursor is assigned and finding the lowest free block is amortised O(1); inside a block only
/// the 64-address words that hold something exist (<see cref="Block"/>).
/// Pure and single-threaded: the network grain owns it.
/// </remarks>
public sealed class BlockPool
{
    private readonly IpPrefix _network;
    private readonly UInt128 _blockCount;
    private readonly UInt128 _blockSize;
    private readonly Dictionary<UInt128, Block> _assigned = [];
    private readonly Dictionary<string, List<Block>> _byNode = new(StringComparer.Ordinal);
    private readonly Dictionary<UInt128, string> _holders = [];
    // Every block below this index is assigned (assignments are never taken back).
    private UInt128 _lowestFree;

    public BlockPool(IpPrefix network, int blockLength)
    {
        if (blockLength < ShortestBlock(network) || blockLength > LongestBlock(network.Family))
        {
            throw new ArgumentOutOfRangeException(nameof(blockLength), blockLength,
                $"a block of {network} must lie between /{ShortestBlock(network)} and /{LongestBlock(network.Family)}");
        }
        _network = network;
        BlockLength = blockLength;
        _blockCount = UInt128.One << (blockLength - network.Length);
        _blockSize = UInt128.One << (network.Bits - blockLength);
        Gateway = network.Network + 1;
    }

    /// <summary>
    /// The longest block length of a family: /30 and /126. A block holds its node's VTEP address
    /// (its first) and block 0 also the gateway, so four addresses are the fewest that leave every
    /// block, including the first and (IPv4) the one ending in the broadcast address, at least one
    /// address for an endpoint. The rule is shared with netctl's checks (<see cref="AddressRules"/>).
    /// </summary>
    public static int LongestBlock(AddressFamily family) => AddressRules.LongestBlock(family);

    /// <summary>The shortest block length of a network (<see cref="AddressRules.ShortestBlock"/>).</summary>
    public static int ShortestBlock(IpPrefix network) => AddressRules.ShortestBlock(network);

    public UInt128 Gateway { get; }

    public IPAddress GatewayAddress => IpPrefix.ToAddress(Gateway, _network.Family);

    public int BlockLength { get; }

    /// <summary>Addresses currently held.</summary>
    public long Allocated { get; private set; }

    /// <summary>The pool's address family.</summary>
    public AddressFamily Family => _network.Family;

    /// <summary>The network prefix the pool serves.</summary>
    public IpPrefix Network => _network;

    public IpPrefix BlockPrefix(UInt128 index) => new(_network.Network + index * _blockSize, BlockLength, _network.Family);

    /// <summary>Records a block as assigned to a node (from persisted state, or after a request opened it). Idempotent.</summary>
    public void AssignBlock(IpPrefix block, string node)
    {
        if (block.Family != _network.Family || block.Length != BlockLength || !_network.Contains(block))
        {
            throw new ArgumentException($"{block} is not a /{BlockLength} block of {_network}", nameof(block));
        }
        var index = (block.Network - _network.Network) / _blockSize;
        if (_assigned.ContainsKey(index))
        {
            return;
        }
        var assigned = new Block(block.Network, node, _blockSize, ReservedOffsets(block.Network));
        _assigned[index] = assigned;
        if (!_byNode.TryGetValue(node, out var blocks))
        {
            _byNode[node] = blocks = [];
        }
        blocks.Add(assigned);
    }

    /// <summary>
    /// Marks an address held by <paramref name="holder"/> (from the store). Returns false if it
    /// is not in an assigned block or is reserved (then nobody can be handed it). A pool rebuilt
    /// this way (a restart, an idle allocator activated again) goes on handing out addresses after
    /// the highest held one of each block, as it would have: not from the block's start, where the
    /// lowest address given back (perhaps a moment ago, still cached by DNS clients and in
    /// conntrack) would come first.
    /// </summary>
    public bool MarkHeld(IPAddress address, string holder)
    {
        if (!TryLocate(address, out var value, out var block, out var offset) || block is null || IsReserved(value, offset)) return false;
        if (block.Set(offset)) Allocated++;
        block.PassOver(offset);
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
        if (!_byNode.TryGetValue(node, out var blocks)) return null;
        foreach (var block in blocks)
        {
            if (block.Free > 0 && block.TryTake(out var offset))
            {
                Allocated++;
                var value = block.Start + offset;
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
        if (!TryLocate(address, out var value, out var block, out var offset)) return new(RequestOutcome.Outside);
        var index = (value - _network.Network) / _blockSize;
        if (IsReserved(value, offset)) return new(RequestOutcome.Reserved);
        if (block is null) return new(RequestOutcome.BlockFree, Block: BlockPrefix(index));
        if (block.Node != node) return new(RequestOutcome.OtherNode, block.Node, BlockPrefix(index));
        if (!block.Set(offset)) return new(RequestOutcome.Held, _holders.GetValueOrDefault(value));
        Allocated++;
        _holders[value] = holder;
        return new(RequestOutcome.Taken);
    }

    /// <summary>Assigns the lowest free block to a node, or returns null when none is left.</summary>
    public IpPrefix? TryAssignFreeBlock(string node)
    {
        // Blocks opened out of order (requested addresses, persisted state) are skipped once each.
        while (_lowestFree < _blockCount && _assigned.ContainsKey(_lowestFree))
        {
            _lowestFree++;
        }
        if (_lowestFree == _blockCount)
        {
            return null;
        }
        var block = BlockPrefix(_lowestFree);
        AssignBlock(block, node);
        return block;
    }

    /// <summary>
    /// Frees each of <paramref name="addresses"/> (textual) in whichever of <paramref name="pools"/>
    /// holds it for <paramref name="holder"/>. Pools not built yet (null) hold nothing to free: they
    /// are built from the store, where the release has already committed.
    /// </summary>
    public static void Release(List<BlockPool>? pools, string holder, IEnumerable<string> addresses)
    {
        if (pools is null) return;
        foreach (var text in addresses)
        {
            var address = IPAddress.Parse(text);
            pools.ForEach(p => p.Release(address, holder));
        }
    }

    /// <summary>Frees an address if <paramref name="holder"/> holds it; returns whether it did.</summary>
    public bool Release(IPAddress address, string holder)
    {
        if (!TryLocate(address, out var value, out var block, out var offset) ||
            !_holders.TryGetValue(value, out var current) || current != holder)
        {
            return false;
        }
        _holders.Remove(value);
        if (block is not null && block.Clear(offset))
        {
            Allocated--;
        }
        return true;
    }

    /// <summary>Where an address lies: false outside the network; <paramref name="block"/> is null when its block is unassigned.</summary>
    private bool TryLocate(IPAddress address, out UInt128 value, out Block? block, out UInt128 offset)
    {
        value = IpPrefix.ToNumber(address);
        (block, offset) = (null, 0);
        if (address.AddressFamily != _network.Family || !_network.Contains(value)) return false;
        var (index, within) = UInt128.DivRem(value - _network.Network, _blockSize);
        block = _assigned.GetValueOrDefault(index);
        offset = within;
        return true;
    }

    private bool IsReserved(UInt128 address, UInt128 offset) =>
        offset == 0 || address == Gateway || (_network.Family == AddressFamily.InterNetwork && address == _network.Last);

    /// <summary>
    /// Offsets within the block starting at <paramref name="start"/> that are never handed out:
    /// its first address (its node's VTEP; in block 0 also the network address), and the gateway
    /// and the IPv4 broadcast address when they lie in it.
    /// </summary>
    private UInt128[] ReservedOffsets(UInt128 start)
    {
        UInt128[] network = _network.Family == AddressFamily.InterNetwork ? [Gateway, _network.Last] : [Gateway];
        return [0, .. network.Where(a => a > start && a - start < _blockSize).Select(a => a - start)];
    }

    /// <summary>
    /// One block: which of its addresses are taken (held or reserved), as 64-address words of
    /// which only those holding something exist, and how many are free. Finding a free address
    /// passes over full words only, so it costs O(held / 64) at worst, whatever the block's size.
    /// Addresses are handed out round-robin from the last one, so a just-released address is not
    /// reused at once.
    /// </summary>
    private sealed class Block
    {
        private readonly Dictionary<UInt128, ulong> _words = [];
        private readonly UInt128 _size;
        private UInt128 _next;

        public Block(UInt128 start, string node, UInt128 size, IEnumerable<UInt128> reserved)
        {
            Start = start;
            Node = node;
            _size = size;
            Free = size;
            foreach (var offset in reserved) Set(offset);
        }

        public string Node { get; }

        /// <summary>Addresses neither reserved nor held.</summary>
        public UInt128 Free { get; private set; }

        /// <summary>The block's first address.</summary>
        public UInt128 Start { get; }

        public bool Set(UInt128 offset)
        {
            var (word, bit) = (offset >> 6, 1UL << (int)(offset & 63));
            var used = _words.GetValueOrDefault(word);
            if ((used & bit) != 0) return false;
            _words[word] = used | bit;
            Free--;
            return true;
        }

        public bool Clear(UInt128 offset)
        {
            var (word, bit) = (offset >> 6, 1UL << (int)(offset & 63));
            var used = _words.GetValueOrDefault(word);
            if ((used & bit) == 0) return false;
            if ((used &= ~bit) == 0) _words.Remove(word);
            else _words[word] = used;
            Free++;
            return true;
        }

        /// <summary>Moves the round-robin cursor past <paramref name="offset"/> if it has not passed it yet.</summary>
        public void PassOver(UInt128 offset)
        {
            if (offset >= _next) _next = offset + 1 == _size ? 0 : offset + 1;
        }

        public bool TryTake(out UInt128 offset)
        {
            if (Free == 0 || !(TryFind(_next, _size, out offset) || TryFind(0, _next, out offset)))
            {
                offset = 0;
                return false;
            }
            Set(offset);
            _next = offset + 1 == _size ? 0 : offset + 1;
            return true;
        }

        /// <summary>The first free offset in [from, to). A word that does not exist is wholly free, so only full words are passed over.</summary>
        private bool TryFind(UInt128 from, UInt128 to, out UInt128 offset)
        {
            for (var at = from; at < to;)
            {
                var wordStart = at & ~(UInt128)63;
                var low = (int)(at - wordStart);
                var high = (int)(UInt128.Min(wordStart + 64, to) - wordStart);
                var candidates = (high == 64 ? ulong.MaxValue : (1UL << high) - 1) & ~((1UL << low) - 1);
                var free = ~_words.GetValueOrDefault(wordStart >> 6) & candidates;
                if (free != 0)
                {
                    offset = wordStart + (UInt128)ulong.TrailingZeroCount(free);
                    return true;
                }
                at = wordStart + 64;
            }
            offset = 0;
            return false;
        }
    }
}
