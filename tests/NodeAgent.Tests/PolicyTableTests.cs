using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Policy;
using ControlPlane.NodeAgent.Table;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// The policy part of the agent's table in a real kernel (a private namespace): compiled groups
/// go in as exact and interval elements that `nft` prints, a restarted programmer changes nothing,
/// and an emptied group leaves nothing behind.
/// </summary>
public sealed class PolicyTableTests : IDisposable
{
    private readonly string _name = "cpt" + Guid.NewGuid().ToString("N")[..8];
    private readonly NetworkNamespace _namespace;

    public PolicyTableTests()
    {
        Shell.Must("ip", "netns", "add", _name);
        _namespace = NetworkNamespace.Enter("/var/run/netns/" + _name);
    }

    [Fact]
    public void Groups_AreProgrammedReadably_ReadBackUnchanged_AndRemovedWhole()
    {
        var index = new PolicyIndex("n1", 1000);
        var endpoint = new Endpoint
        {
            Metadata = new ObjectMeta { Namespace = "x", Name = "a", Labels = { ["app"] = "db" } },
            Spec = new EndpointSpec { Node = "n1" },
            Status = new EndpointStatus { Ips = { "10.60.0.5", "fd00:60::5" } },
        };
        var peer = new Endpoint
        {
            Metadata = new ObjectMeta { Namespace = "x", Name = "b", Labels = { ["app"] = "web" } },
            Spec = new EndpointSpec { Node = "n2" },
            Status = new EndpointStatus { Ips = { "10.60.1.7", "fd00:60::1:7" } },
        };
        var policy = PolicyTruthTableTests.Policy("x", "db", PolicyTruthTableTests.Select("app", "db"), ingress:
        [
            PolicyTruthTableTests.Rule([PolicyTruthTableTests.Pods("app", "web")], [new NetworkPolicyPort { Protocol = Protocol.Tcp, Number = 5432 }]),
            PolicyTruthTableTests.Rule([PolicyTruthTableTests.Block("192.168.0.0/16", "192.168.1.0/24")], [new NetworkPolicyPort { Protocol = Protocol.Udp, Number = 1000, EndPort = 2000 }]),
        ]);
        index.Reset([endpoint, peer], [policy], []);
        var groups = index.TakeChanges();

        var (first, restarted, listing) = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open(AgentTable.Name);
            var a = new TableProgrammer(nft).Apply(groups, complete: true);
            var b = new TableProgrammer(nft).Apply(groups, complete: true);
            return (a, b, Shell.Run("ip", "netns", "exec", _name, "nft", "list", "table", "inet", "controlplane"));
        });
        Assert.True(listing.Code == 0, listing.Output);
        // Isolation v4+v6, one exact entry per family, two ranges (v4 only), and the endpoint's own
        // address with every protocol and port per family (it always reaches itself).
        Assert.Equal(2 + 2 + 2 + 2, first.ElementsAdded);
        Assert.Equal((0, 0), (restarted.ElementsAdded, restarted.ElementsRemoved));
        var (hit, miss) = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open(AgentTable.Name);
            var exact = groups.SelectMany(g => g.Group.Elements).First(e => e.Set == PolicyRuleset.Exact(FamilyLayout.V4, PolicyDirection.Ingress)).Element.Key;
            var other = (byte[])exact.Clone();
            other[^3] ^= 1;
            return (nft.ContainsElement(PolicyRuleset.Exact(FamilyLayout.V4, PolicyDirection.Ingress), exact), nft.ContainsElement(PolicyRuleset.Exact(FamilyLayout.V4, PolicyDirection.Ingress), other));
        });
        Assert.True(hit);
        Assert.False(miss);
        Assert.Contains("10.60.0.5 . 10.60.1.7 . tcp . 5432", listing.Output);
        Assert.Contains("fd00:60::5 . fd00:60::1:7 . tcp . 5432", listing.Output);
        Assert.Contains("10.60.0.5 . 192.168.0.0/24 . udp . 1000-2000", listing.Output);
        Assert.Contains("10.60.0.5 . 192.168.2.0-192.168.255.255 . udp . 1000-2000", listing.Output);
        Assert.Contains("10.60.0.5 . 10.60.0.5 . 0-255 . 0-65535", listing.Output);
        Assert.Contains("ip daddr . ip saddr . meta l4proto . th dport @ing_exact4 accept", listing.Output);

        var emptied = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open(AgentTable.Name);
            var programmer = new TableProgrammer(nft);
            programmer.Apply(groups, complete: true);
            programmer.Apply([(groups[0].Key, ElementGroup.Empty)], complete: false);
            return (nft.ListSets().Where(set => PolicyRuleset.IsPolicySet(set.Name)).Sum(set => nft.ListElements(set.Name).Count),
                nft.ListChains().Count(c => PolicyRuleset.IsShardChain(c.Name)), nft.ListSets().Count(set => set.Name.Contains("_range", StringComparison.Ordinal)));
        });
        // The shard chains and their sets go with the last endpoint that used them, as after a restart (below).
        Assert.Equal((0, 0, 0), emptied);

        // A restarted agent with nothing to isolate removes the shard chains and their sets too.
        var (chains, sets) = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open(AgentTable.Name);
            new TableProgrammer(nft).Apply([], complete: true);
            return (nft.ListChains().Count(c => PolicyRuleset.IsShardChain(c.Name)), nft.ListSets().Count(set => set.Name.Contains("_range", StringComparison.Ordinal)));
        });
        Assert.Equal((0, 0), (chains, sets));
    }

    /// <summary>A group the kernel refuses (here a range that ends before it starts) goes in closed; the other groups go in whole.</summary>
    [Fact]
    public void A_RefusedGroup_IsAppliedClosed_AndTheOthersWhole()
    {
        ElementGroup Group(string address, AllowBox box)
        {
            var local = AddressRange.Single(System.Net.IPAddress.Parse(address));
            return new ElementGroup(
            [
                (PolicyRuleset.Isolated(FamilyLayout.V4, PolicyDirection.Ingress), PolicyRuleset.IsolationEntry(local, PolicyDirection.Ingress)),
                PolicyRuleset.Entry(local, PolicyDirection.Ingress, box),
            ], [PolicyRuleset.Chain(FamilyLayout.V4, PolicyDirection.Ingress, PolicyRuleset.Shard(local))], []);
        }
        var good = Group("10.60.0.8", new AllowBox(0x0A000000, 0x0AFFFFFF, 6, 6, 80, 80));
        var bad = Group("10.60.0.9", new AllowBox(0x0A0000FF, 0x0A000001, 6, 6, 80, 80)); // a range that ends before it starts
        var (refused, isolated, ranges) = _namespace.Invoke(() =>
        {
            using var nft = NftSocket.Open(AgentTable.Name);
            var (_, refused) = new TableProgrammer(nft).ApplyIsolating([("policy:x/good", good), ("policy:x/bad", bad)], complete: true,
                key => key.StartsWith(PolicyIndex.GroupPrefix, StringComparison.Ordinal), PolicyRuleset.Closed);
            return (refused, nft.ListElements(PolicyRuleset.Isolated(FamilyLayout.V4, PolicyDirection.Ingress)).Count,
                nft.ListSets().Where(set => set.Name.StartsWith("ing_range4_", StringComparison.Ordinal)).Sum(set => nft.ListElements(set.Name).Count));
        });
        Assert.Equal("policy:x/bad", Assert.Single(refused).Key);
        Assert.Equal(2, isolated);
        Assert.Equal(1, ranges);
    }

    public void Dispose()
    {
        _namespace.Dispose();
        Shell.Run("ip", "netns", "del", _name);
    }
}
