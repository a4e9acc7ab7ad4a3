using System.Net;
using ControlPlane.Contracts.Addressing;
using ControlPlane.Grains.Ipam;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Tests;

public sealed class IpamTests
{
    [Theory]
    [InlineData("10.0.0.0/8")]
    [InlineData("fd00:10::/64")]
    [InlineData("0.0.0.0/0")]
    [InlineData("::/0")]
    public void Parse_ValidPrefix_RoundTrips(string text) =>
        Assert.Equal(text, AddressInput.ParsePrefix("f", text).ToString());

    [Theory]
    [InlineData("10.0.0.1/8", "host bits")]
    [InlineData("10.0.0.0/33", "longer")]
    [InlineData("10.0.0.0", "not a CIDR")]
    [InlineData("banana/8", "not a CIDR")]
    public void Parse_Invalid_NamesTheFieldAndReason(string text, string reason)
    {
        var error = Assert.Throws<ControlPlaneException>(() => AddressInput.ParsePrefix("spec.ipv4_cidr", text));
        Assert.Equal("spec.ipv4_cidr", error.Field);
        Assert.Contains(reason, error.Message);
    }

    [Theory]
    [InlineData("10.0.0.0/16", "10.0.255.0/24", true)]
    [InlineData("10.0.0.0/16", "10.1.0.0/16", false)]
    [InlineData("10.0.0.0/8", "10.200.0.0/16", true)]
    [InlineData("fd00::/64", "10.0.0.0/8", false)]
    // ::/0 spans all 128 bits (a shift by 128 would make it one address).
    [InlineData("::/0", "fd00::/64", true)]
    [InlineData("0.0.0.0/0", "10.0.0.0/8", true)]
    public void Overlaps_IsSymmetric(string a, string b, bool expected)
    {
        var (x, y) = (AddressInput.ParsePrefix("a", a), AddressInput.ParsePrefix("b", b));
        Assert.Equal(expected, x.Overlaps(y));
        Assert.Equal(expected, y.Overlaps(x));
    }

    [Theory]
    // Less the network address, the gateway, the IPv4 broadcast and each block's first address (its node's VTEP).
    [InlineData("10.1.0.0/24", 26, 250)]
    [InlineData("fd00:1::/120", 122, 251)]
    public void BlockPool_HandsOutEveryUsableAddressOnce_ThenReportsExhaustion(string cidr, int block, int usable)
    {
        var network = AddressInput.ParsePrefix("n", cidr);
        var pool = new BlockPool(network, block);
        var seen = new HashSet<IPAddress>();
        while (true)
        {
            var address = pool.TryAllocate("node-a", "holder-" + seen.Count);
            if (address is null)
            {
                if (pool.TryAssignFreeBlock("node-a") is null) break;
                continue;
            }
            Assert.True(seen.Add(address), $"{address} handed out twice");
        }
        Assert.Equal(usable, seen.Count);
        Assert.DoesNotContain(network.AddressAt(0), seen);
        Assert.DoesNotContain(network.AddressAt(1), seen);
        Assert.Equal(usable, pool.Allocated);
    }

    [Fact]
    public void BlockPool_StrictAffinity_NodesNeverShareABlock()
    {
        var pool = new BlockPool(AddressInput.ParsePrefix("n", "10.2.0.0/24"), 26);
        var a = pool.TryAssignFreeBlock("a")!.Value;
        var b = pool.TryAssignFreeBlock("b")!.Value;
        var fromA = pool.TryAllocate("a", "ea")!;
        var fromB = pool.TryAllocate("b", "eb")!;

        Assert.False(a.Overlaps(b));
        Assert.True(a.Contains(IpPrefix.ToNumber(fromA)));
        Assert.True(b.Contains(IpPrefix.ToNumber(fromB)));
        Assert.Null(pool.TryAllocate("c", "ec"));
    }

    [Fact]
    public void BlockPool_ReleasedAddress_CanBeHandedOutAgain()
    {
        var network = AddressInput.ParsePrefix("n", "10.3.0.0/30");
        var pool = new BlockPool(network, 30);
        pool.TryAssignFreeBlock("a");
        var only = pool.TryAllocate("a", "first")!;
        Assert.Null(pool.TryAllocate("a", "second"));

        Assert.True(pool.Release(only, "first"));

        Assert.Equal(only, pool.TryAllocate("a", "second"));
        Assert.Equal("second", pool.HolderOf(only));
    }

    [Fact]
    public void BlockPool_ReleaseByAnotherThanTheHolder_ChangesNothing()
    {
        // A late release from an object that held the address before a rebuild must not free it.
        var network = AddressInput.ParsePrefix("n", "10.3.0.0/30");
        var pool = new BlockPool(network, 30);
        pool.AssignBlock(network, "a");
        Assert.True(pool.MarkHeld(IPAddress.Parse("10.3.0.2"), "ns/c"));

        Assert.False(pool.Release(IPAddress.Parse("10.3.0.2"), "ns/a0"));

        Assert.Equal("ns/c", pool.HolderOf(IPAddress.Parse("10.3.0.2")));
        Assert.Null(pool.TryAllocate("a", "ns/d"));
        Assert.Equal(1, pool.Allocated);
    }

    [Fact]
    public void BlockPool_MarkHeld_RebuildsWhatEndpointsHold()
    {
        var network = AddressInput.ParsePrefix("n", "10.4.0.0/30");
        var pool = new BlockPool(network, 30);
        pool.AssignBlock(network, "a");

        Assert.True(pool.MarkHeld(IPAddress.Parse("10.4.0.2"), "ns/e"));
        Assert.Null(pool.TryAllocate("a", "ns/f"));
        Assert.False(pool.MarkHeld(IPAddress.Parse("10.9.0.2"), "ns/g"));
    }

    [Fact]
    public void BlockPool_Rebuilt_GoesOnAfterTheHighestHeldAddress_NotFromTheLowestFreed()
    {
        // 10.5.0.2 was given back before the rebuild: round-robin would not have reached it again yet.
        var network = AddressInput.ParsePrefix("n", "10.5.0.0/24");
        var pool = new BlockPool(network, 26);
        pool.AssignBlock(AddressInput.ParsePrefix("b", "10.5.0.0/26"), "a");
        pool.AssignBlock(AddressInput.ParsePrefix("b", "10.5.0.64/26"), "b");
        foreach (var held in new[] { "10.5.0.5", "10.5.0.3", "10.5.0.4", "10.5.0.70" })
            Assert.True(pool.MarkHeld(IPAddress.Parse(held), "ns/" + held));

        Assert.Equal(IPAddress.Parse("10.5.0.6"), pool.TryAllocate("a", "ns/next"));
        Assert.Equal(IPAddress.Parse("10.5.0.71"), pool.TryAllocate("b", "ns/next-b"));
        // The cursor wraps: with the block's top held, the free addresses below come round again.
        Assert.True(pool.MarkHeld(IPAddress.Parse("10.5.0.63"), "ns/top"));
        Assert.Equal(IPAddress.Parse("10.5.0.2"), pool.TryAllocate("a", "ns/wrapped"));
    }

    [Fact]
    public void MacAddresses_AreDeterministicLocallyAdministeredUnicast()
    {
        var mac = MacAddresses.Derive("vtep/node-1");
        Assert.Equal(mac, MacAddresses.Derive("vtep/node-1"));
        Assert.NotEqual(mac, MacAddresses.Derive("vtep/node-2"));
        var first = Convert.ToByte(mac[..2], 16);
        Assert.Equal(0x02, first & 0x03);
        Assert.Matches("^([0-9a-f]{2}:){5}[0-9a-f]{2}$", mac);
    }
}
