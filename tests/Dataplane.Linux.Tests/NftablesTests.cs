using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.Dataplane.Linux.Nftables;

namespace ControlPlane.Dataplane.Linux.Tests;

/// <summary>
/// The nf_tables layer against the kernel in a namespace of its own; what it programmed is read
/// back with `nft`, a tool we did not write.
/// </summary>
public sealed class NftablesTests : IDisposable
{
    private readonly string _name = "cpnf" + Guid.NewGuid().ToString("N")[..8];
    private readonly NetworkNamespace _namespace;

    public NftablesTests()
    {
        Shell.Run("ip", "netns", "add", _name);
        _namespace = NetworkNamespace.Enter(_name);
    }

    private static readonly NftSetSpec Ports = new("ports", Nft.SetMap, Nft.Concat(Nft.TypeIpAddr, Nft.TypeInetService), 8, Nft.DataTypeVerdict);

    private static NftSchema Schema() => new([Ports], [
        new NftChainSpec("pre", new NftHook(Nft.HookPrerouting, -100, "nat"), [
            new RuleBuilder().Meta(RuleBuilder.MetaNfProto, 0).CmpByte(0, RuleBuilder.CmpEq, Nft.FamilyIpv4)
                .Payload(RuleBuilder.BaseNetwork, 16, 4, 0).Payload(RuleBuilder.BaseTransport, 2, 2, 1)
                .Lookup("ports", 0, verdict: true).Build("dispatch"),
        ]),
        new NftChainSpec("target", null, [new RuleBuilder().Verdict(new NftVerdict(Nft.Accept)).Build("accept")]),
    ]);

    private static NftElement Port(byte last, ushort port) =>
        new([10, 96, 0, last, (byte)(port >> 8), (byte)port, 0, 0], Verdict: NftVerdict.GotoChain("target"));

    private string List() => Shell.Run("ip", "netns", "exec", _name, "nft", "list", "table", "inet", "t");

    [Fact]
    public void Converge_BuildsTheTable_ThenChangesOnlyTheDifference_AndRemovesWhatIsNotOurs()
    {
        var wanted = new NftContents();
        foreach (var e in new[] { Port(1, 80), Port(2, 443) }) wanted.Set("ports")[ElementKey.Of(e)] = e;

        var first = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open("t");
            return NftTableSync.Converge(nft, Schema(), [], wanted, new HashSet<string>());
        });
        Assert.True(first.Rebuilt);
        var listed = List();
        Assert.Contains("ip daddr . th dport vmap @ports comment \"dispatch\"", listed);
        Assert.Contains("10.96.0.1 . 80 : goto target", listed);

        // Someone adds a chain, a set and an element to our table, and deletes one of ours.
        Shell.Run("ip", "netns", "exec", _name, "nft", "add chain inet t stray; add set inet t junk { type ipv4_addr; }; "
            + "add element inet t ports { 10.96.0.9 . 9 : goto target }; delete element inet t ports { 10.96.0.2 . 443 }");

        var second = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open("t");
            return NftTableSync.Converge(nft, Schema(), [], wanted, new HashSet<string>());
        });
        Assert.False(second.Rebuilt);
        Assert.Equal((1, 1), (second.ElementsAdded, second.ElementsRemoved));
        listed = List();
        Assert.DoesNotContain("stray", listed);
        Assert.DoesNotContain("junk", listed);
        Assert.DoesNotContain("10.96.0.9", listed);
        Assert.Contains("10.96.0.2 . 443 : goto target", listed);

        var third = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open("t");
            return NftTableSync.Converge(nft, Schema(), [], wanted, new HashSet<string>());
        });
        Assert.Equal((false, 0, 0, 0), (third.Rebuilt, third.ElementsAdded, third.ElementsRemoved, third.ChainsChanged));
    }

    [Fact]
    public void Transaction_IsAllOrNothing_AndTheRefusalNamesTheChange()
    {
        var error = Assert.Throws<NetlinkException>(() => _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open("t");
            var tx = nft.Begin();
            tx.AddTable();
            tx.AddChain("target");
            tx.AddSet(Ports);
            tx.AddElement("ports", Port(1, 80));
            tx.AddElement("nosuchset", Port(2, 80));
            nft.Commit(tx);
        }));
        Assert.True(error.IsNotFound);
        Assert.Contains("nosuchset", error.Message);
        // Nothing of it was applied: not even the table.
        Assert.Contains("No such file or directory", List());
    }

    public void Dispose()
    {
        _namespace.Dispose();
        Shell.Run("ip", "netns", "del", _name);
    }
}
