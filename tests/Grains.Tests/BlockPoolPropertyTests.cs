using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using ControlPlane.Contracts.Addressing;
using ControlPlane.Grains.Ipam;

namespace ControlPlane.Grains.Tests;

/// <summary>
/// Properties of <see cref="BlockPool"/> over every network and block length of both families:
/// exhaustively where a network is small enough to fill, sampled where the space is huge. The
/// reference model is the rule itself: the network address, the gateway (network + 1), the IPv4
/// broadcast address and every block's first address are reserved; everything else is handed
/// out once, from a block of the asking node.
/// </summary>
public sealed class BlockPoolPropertyTests
{
    private static readonly string[] Nodes = ["node-a", "node-b", "node-c"];

    /// <summary>Every network of at most 4096 addresses (/20../30, /116../126) with every block length it accepts.</summary>
    public static TheoryData<AddressFamily, int, int> SmallNetworks()
    {
        var data = new TheoryData<AddressFamily, int, int>();
        foreach (var family in new[] { AddressFamily.InterNetwork, AddressFamily.InterNetworkV6 })
        {
            var longest = Longest(family);
            for (var length = longest - 10; length <= longest; length++)
            {
                for (var block = length; block <= longest; block++) data.Add(family, length, block);
            }
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(SmallNetworks))]
    public void SmallNetwork_FillReleaseRefill_HandsOutExactlyTheUnreservedAddresses(AddressFamily family, int length, int blockLength)
    {
        var random = new Random(length * 1000 + blockLength);
        var network = RandomNetwork(random, family, length);
        var pool = new BlockPool(network, blockLength);
        var owner = new Dictionary<UInt128, string>();
        var holders = new Dictionary<IPAddress, string>();

        var assignedInOrder = Fill(pool, holders, owner, "fill");

        // Blocks went out lowest first, and every address lies in a block of the node that asked.
        Assert.Equal(Enumerable.Range(0, assignedInOrder.Count).Select(i => BlockAt(network, blockLength, (UInt128)i)), assignedInOrder);
        Assert.Equal(UInt128.One << (blockLength - length), (UInt128)assignedInOrder.Count);
        var expected = Enumerable.Range(0, 1 << (network.Bits - length)).Select(i => network.Network + (UInt128)i).Where(a => !Reserved(network, blockLength, a)).ToHashSet();
        Assert.Equal(expected, holders.Keys.Select(IpPrefix.ToNumber).ToHashSet());
        Assert.Equal(expected.Count, pool.Allocated);
        foreach (var (address, holder) in holders)
        {
            Assert.Equal(holder, pool.HolderOf(address));
            Assert.Equal(owner[BlockIndex(network, blockLength, address)], NodeOf(holder));
        }
        // Every reserved address is refused to every node, and nothing is left for anyone.
        foreach (var reserved in Enumerable.Range(0, 1 << (network.Bits - length)).Select(i => network.Network + (UInt128)i).Where(a => Reserved(network, blockLength, a)))
        {
            var address = IpPrefix.ToAddress(reserved, family);
            Assert.All(Nodes, node => Assert.Equal(RequestOutcome.Reserved, pool.TryTake(address, node, "ns/late").Outcome));
        }
        AssertExhausted(pool);

        // Release a random half (a stranger's release changes nothing), then refill: exactly those come back.
        var released = holders.Where(_ => random.Next(2) == 0).ToList();
        foreach (var (address, holder) in released)
        {
            Assert.False(pool.Release(address, "ns/stranger"));
            Assert.True(pool.Release(address, holder));
            Assert.False(pool.Release(address, holder));
            Assert.Null(pool.HolderOf(address));
            holders.Remove(address);
        }
        Assert.Equal(expected.Count - released.Count, pool.Allocated);
        var before = holders.Keys.ToHashSet();
        Fill(pool, holders, owner, "refill");
        Assert.Equal(released.Select(r => r.Key).ToHashSet(), holders.Keys.Except(before).ToHashSet());
        Assert.Equal(expected.Count, pool.Allocated);
        AssertExhausted(pool);
    }

    /// <summary>Every network length of both families with every block length a pool accepts: 495 IPv4 and 8,127 IPv6 combinations.</summary>
    [Theory]
    [InlineData(AddressFamily.InterNetwork)]
    [InlineData(AddressFamily.InterNetworkV6)]
    public void EveryNetworkAndBlockLength_Sampled_AllocatesFromTheRightBlocksAndReleases(AddressFamily family)
    {
        var longest = Longest(family);
        for (var length = 0; length <= longest; length++)
        {
            for (var blockLength = Math.Max(length, 1); blockLength <= longest; blockLength++)
            {
                Sample(family, length, blockLength);
            }
        }
    }

    private static void Sample(AddressFamily family, int length, int blockLength)
    {
        var random = new Random(length * 1000 + blockLength);
        var network = RandomNetwork(random, family, length);
        var pool = new BlockPool(network, blockLength);
        var blockCount = UInt128.One << (blockLength - length);

        Assert.Null(pool.TryAllocate("node-a", "ns/e"));
        var first = pool.TryAssignFreeBlock("node-a");
        Assert.Equal(BlockAt(network, blockLength, 0), first);
        var taken = new List<IPAddress>();
        for (var i = 0; i < 40 && pool.TryAllocate("node-a", $"ns/a{i}") is { } address; i++)
        {
            var value = IpPrefix.ToNumber(address);
            if (!first!.Value.Contains(value) || Reserved(network, blockLength, value))
            {
                Assert.Fail($"{network} in /{blockLength} blocks: {address} is outside {first} or reserved");
            }
            Assert.DoesNotContain(address, taken);
            taken.Add(address);
        }
        Assert.NotEmpty(taken);
        Assert.Equal(taken.Count, pool.Allocated);

        // A requested address in a random block: reserved, or it opens that block for its node.
        var index = RandomBelow(random, blockCount);
        var requested = IpPrefix.ToAddress(network.Network + (index << (network.Bits - blockLength)) + RandomBelow(random, UInt128.One << (network.Bits - blockLength)), family);
        var outcome = pool.TryTake(requested, "node-b", "ns/requested");
        if (Reserved(network, blockLength, IpPrefix.ToNumber(requested)))
        {
            Assert.Equal(RequestOutcome.Reserved, outcome.Outcome);
        }
        else if (index == 0)
        {
            Assert.Equal(new RequestResult(RequestOutcome.OtherNode, "node-a", first), outcome);
        }
        else
        {
            Assert.Equal(new RequestResult(RequestOutcome.BlockFree, Block: BlockAt(network, blockLength, index)), outcome);
            pool.AssignBlock(outcome.Block!.Value, "node-b");
            Assert.Equal(RequestOutcome.Taken, pool.TryTake(requested, "node-b", "ns/requested").Outcome);
            Assert.Equal(RequestOutcome.Held, pool.TryTake(requested, "node-b", "ns/again").Outcome);
            Assert.Equal("ns/requested", pool.HolderOf(requested));
        }
        // The last address: the IPv4 broadcast is reserved, IPv6 has none.
        var last = IpPrefix.ToAddress(network.Last, family);
        var lastOutcome = pool.TryTake(last, "node-c", "ns/last").Outcome;
        Assert.Equal(family == AddressFamily.InterNetwork, lastOutcome == RequestOutcome.Reserved);

        // New blocks keep coming lowest first, skipping the one a request opened.
        var assigned = new HashSet<UInt128> { 0 };
        if (outcome.Outcome == RequestOutcome.BlockFree) assigned.Add(index);
        for (var n = 0; n < 8; n++)
        {
            var lowest = Lowest(assigned, blockCount);
            var block = pool.TryAssignFreeBlock(Nodes[n % 3]);
            if (lowest is null)
            {
                Assert.Null(block);
                break;
            }
            Assert.Equal(BlockAt(network, blockLength, lowest.Value), block);
            assigned.Add(lowest.Value);
        }

        // Release: only by the holder, and the address can be had again.
        var released = taken[random.Next(taken.Count)];
        var holder = pool.HolderOf(released)!;
        Assert.False(pool.Release(released, "ns/stranger"));
        var held = pool.Allocated;
        Assert.True(pool.Release(released, holder));
        Assert.Equal(held - 1, pool.Allocated);
        Assert.Equal(RequestOutcome.Taken, pool.TryTake(released, "node-a", "ns/back").Outcome);
    }

    [Fact]
    public void Ipv6Slash48_DefaultAndSlash64Blocks_GiveAddressesAtOnce()
    {
        // The defects found: /48 with /122 blocks (2^74 of them) had none; /64 blocks (2^64 addresses) failed.
        foreach (var blockLength in new[] { 122, 64, 48 })
        {
            var pool = new BlockPool(AddressInput.ParsePrefix("n", "fd00:48::/48"), blockLength);
            var block = pool.TryAssignFreeBlock("node-a");
            Assert.Equal($"fd00:48::/{blockLength}", block.ToString());
            Assert.Equal(IPAddress.Parse("fd00:48::2"), pool.TryAllocate("node-a", "ns/e1"));
            Assert.Equal(IPAddress.Parse("fd00:48::3"), pool.TryAllocate("node-a", "ns/e2"));
        }
    }

    [Fact]
    public void HugeSpaces_CostWhatIsHeld_NotTheirSize()
    {
        // 2^126 blocks: a thousand assignments after a far request still go lowest first at once.
        var blocks = new BlockPool(AddressInput.ParsePrefix("n", "2000::/3"), 126);
        var far = blocks.TryTake(IPAddress.Parse("2000::6"), "node-b", "ns/far");
        blocks.AssignBlock(far.Block!.Value, "node-b");
        var watch = Stopwatch.StartNew();
        var indexes = Enumerable.Range(0, 1000).Select(_ => (blocks.TryAssignFreeBlock("node-a")!.Value.Network - blocks.Network.Network) >> 2).ToList();
        Assert.Equal(new UInt128[] { 0 }.Concat(Enumerable.Range(2, 999).Select(i => (UInt128)i)), indexes);

        // 2^64 addresses in one block: fill 20,000, release every other one, and take 10,000 more.
        var wide = new BlockPool(AddressInput.ParsePrefix("n", "fd00:64::/64"), 64);
        wide.TryAssignFreeBlock("node-a");
        var addresses = Enumerable.Range(0, 20_000).Select(i => wide.TryAllocate("node-a", $"ns/{i}")!).ToList();
        Assert.Equal(20_000, addresses.Distinct().Count());
        for (var i = 0; i < addresses.Count; i += 2) Assert.True(wide.Release(addresses[i], $"ns/{i}"));
        Assert.All(Enumerable.Range(0, 10_000), i => Assert.NotNull(wide.TryAllocate("node-a", $"ns/more{i}")));
        Assert.Equal(20_000, wide.Allocated);
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(10), $"took {watch.Elapsed}");
    }

    [Fact]
    public void BlockLengthOutsideTheRange_IsRefused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new BlockPool(AddressInput.ParsePrefix("n", "10.0.0.0/24"), 23));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BlockPool(AddressInput.ParsePrefix("n", "10.0.0.0/24"), 31));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BlockPool(AddressInput.ParsePrefix("n", "fd00::/64"), 127));
        Assert.Throws<ArgumentOutOfRangeException>(() => new BlockPool(AddressInput.ParsePrefix("n", "::/0"), 0));
    }

    /// <summary>Allocates round-robin over the nodes, giving a node the lowest free block when its own are full, until nothing is left.</summary>
    private static List<IpPrefix> Fill(BlockPool pool, Dictionary<IPAddress, string> holders, Dictionary<UInt128, string> owner, string round)
    {
        var assigned = new List<IpPrefix>();
        for (int n = 0, stuck = 0; stuck < Nodes.Length; n++)
        {
            var node = Nodes[n % Nodes.Length];
            var holder = $"{node}/{round}{n}";
            var address = pool.TryAllocate(node, holder);
            if (address is null && pool.TryAssignFreeBlock(node) is { } block)
            {
                assigned.Add(block);
                owner[BlockIndex(pool.Network, block.Length, block.AddressAt(0))] = node;
                address = pool.TryAllocate(node, holder);
                Assert.NotNull(address);
            }
            if (address is null)
            {
                stuck++;
                continue;
            }
            stuck = 0;
            Assert.True(holders.TryAdd(address, holder), $"{address} handed out twice");
        }
        return assigned;
    }

    private static void AssertExhausted(BlockPool pool)
    {
        Assert.All(Nodes, node => Assert.Null(pool.TryAllocate(node, "ns/late")));
        Assert.Null(pool.TryAssignFreeBlock("node-d"));
    }

    /// <summary>The longest block of a family: four addresses (the VTEP, in block 0 the gateway, one endpoint, for IPv4 in the last block the broadcast).</summary>
    private static int Longest(AddressFamily family) => family == AddressFamily.InterNetwork ? 30 : 126;

    private static IpPrefix BlockAt(IpPrefix network, int blockLength, UInt128 index) =>
        new(network.Network + (index << (network.Bits - blockLength)), blockLength, network.Family);

    private static bool Reserved(IpPrefix network, int blockLength, UInt128 address) =>
        address == network.Network || address == network.Network + 1 ||
        (network.Family == AddressFamily.InterNetwork && address == network.Last) ||
        ((address - network.Network) & ((UInt128.One << (network.Bits - blockLength)) - 1)) == 0;

    private static UInt128 BlockIndex(IpPrefix network, int blockLength, IPAddress address) =>
        (IpPrefix.ToNumber(address) - network.Network) >> (network.Bits - blockLength);

    private static string NodeOf(string holder) => holder[..holder.IndexOf('/', StringComparison.Ordinal)];

    private static UInt128? Lowest(HashSet<UInt128> assigned, UInt128 count)
    {
        for (UInt128 i = 0; i < count; i++)
        {
            if (!assigned.Contains(i)) return i;
        }
        return null;
    }

    private static IpPrefix RandomNetwork(Random random, AddressFamily family, int length)
    {
        var bits = family == AddressFamily.InterNetwork ? 32 : 128;
        var value = RandomBelow(random, bits == 32 ? UInt128.One << 32 : UInt128.MaxValue);
        return new IpPrefix(length == 0 ? 0 : value >> (bits - length) << (bits - length), length, family);
    }

    private static UInt128 RandomBelow(Random random, UInt128 bound)
    {
        Span<byte> bytes = stackalloc byte[16];
        random.NextBytes(bytes);
        return System.Buffers.Binary.BinaryPrimitives.ReadUInt128LittleEndian(bytes) % bound;
    }
}
