using ControlPlane.Contracts.V1;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>Network ranges and node underlay addresses: special ranges refused, canonical forms, one node per underlay address.</summary>
public sealed class AddressValidationTests
{
    private static async Task Fails(StatusCode code, Func<Task> call, string field, string? fragment = null)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.Equal(code, error.StatusCode);
        Assert.StartsWith(field + ":", error.Status.Detail);
        if (fragment is not null) Assert.Contains(fragment, error.Status.Detail);
    }

    [Fact]
    public async Task Network_OverlappingASpecialRange_IsInvalidArgument_AndChangesNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var before = await PositionAsync(silo.Client);

        foreach (var cidr in new[] { "127.0.0.0/8", "127.1.0.0/16", "0.0.0.0/8", "0.0.0.0/16", "169.254.0.0/16", "169.254.10.0/24", "224.0.0.0/24", "239.1.0.0/16", "255.255.255.252/30", "240.0.0.0/4", "128.0.0.0/1" })
        {
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Networks.CreateAsync(Network("odd", 900, cidr)), "spec.ipv4_cidr");
        }
        foreach (var cidr in new[] { "::/64", "::/120", "fe80::/64", "febf:1::/64", "ff02::/64", "ff00::/8", "::ffff:0:0/96", "8000::/1" })
        {
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Networks.CreateAsync(Network("odd", 900, "10.90.0.0/16", cidr)), "spec.ipv6_cidr");
        }
        Assert.Equal(before, await PositionAsync(silo.Client));

        // Next to the special ranges is fine.
        await silo.Client.Networks.CreateAsync(Network("edge", 901, "126.0.0.0/8", "fe00::/64"));
        await silo.Client.Networks.CreateAsync(Network("edge2", 902, "223.255.0.0/16", "::2:0:0/96"));
    }

    /// <summary>
    /// IPAddress reads "010.39.0.0" as octal (8.39.0.0) where most other tools read decimal or
    /// refuse it: a prefix in any but the plain form is refused, in networks and policies alike.
    /// </summary>
    [Fact]
    public async Task Prefix_NotInCanonicalInputForm_IsInvalidArgument_AndChangesNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var before = await PositionAsync(silo.Client);

        string[] refused = ["010.39.0.0/16", "172.016.0.0/16", "0x0a.42.0.0/16", "10.41/16", "167772160/8", "10.43.0.0/016", "10.43.0.0/+16", "10.43.0.0/ 16", "10.43.0.0/16 ", "fd00:1::/064"];
        foreach (var cidr in refused)
        {
            var v6 = cidr.Contains(':');
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Networks.CreateAsync(v6 ? Network("odd", 900, "10.90.0.0/16", cidr) : Network("odd", 900, cidr)),
                v6 ? "spec.ipv6_cidr" : "spec.ipv4_cidr", "is not a CIDR");
            await Fails(StatusCode.InvalidArgument, () => silo.Client.NetworkPolicies.CreateAsync(new NetworkPolicy
            {
                Metadata = new ObjectMeta { Name = "odd", Namespace = "ns" },
                Spec = new NetworkPolicySpec { Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = cidr } } } } } },
            }), "spec.ingress[0].peers[0].ip_block.cidr", "is not a CIDR");
        }
        // IPv6 forms that parse but are not an address of the network say why.
        foreach (var (cidr, why) in new[] { ("fd00:1::%eth0/64", "has a zone"), ("::ffff:10.0.0.0/104", "is an IPv4-mapped IPv6 address: write the IPv4 address itself (10.0.0.0)") })
        {
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Networks.CreateAsync(Network("odd", 900, "10.90.0.0/16", cidr)), "spec.ipv6_cidr", why);
            await Fails(StatusCode.InvalidArgument, () => silo.Client.NetworkPolicies.CreateAsync(new NetworkPolicy
            {
                Metadata = new ObjectMeta { Name = "odd", Namespace = "ns" },
                Spec = new NetworkPolicySpec { Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = "10.0.0.0/8", Except = { cidr } } } } } } },
            }), "spec.ingress[0].peers[0].ip_block.except[0]", why);
        }
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Nodes.CreateAsync(Node("node-x", "::ffff:10.0.0.9")), "spec.underlay_ip", "is an IPv4-mapped IPv6 address");
        Assert.Equal(before, await PositionAsync(silo.Client));

        // The plain forms of the same ranges are fine.
        await silo.Client.Networks.CreateAsync(Network("plain", 901, "10.39.0.0/16", "fd00:1::/64"));

        // Host bits: refused in a network's range, read away in a policy's ip_block (as Kubernetes
        // does; its e2e tests write "podIP/4" except "podIP/32"), where the except must still lie within.
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Networks.CreateAsync(Network("bits", 902, "10.44.0.1/16")), "spec.ipv4_cidr", "has host bits set");
        NetworkPolicy Block(string name, string cidr, string except) => new()
        {
            Metadata = new ObjectMeta { Name = name, Namespace = "ns" },
            Spec = new NetworkPolicySpec { Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { IpBlock = new IPBlock { Cidr = cidr, Except = { except } } } } } } },
        };
        var accepted = await silo.Client.NetworkPolicies.CreateAsync(Block("bits", "10.60.3.7/4", "10.60.3.7/32"));
        Assert.Equal("10.60.3.7/4", accepted.Spec.Ingress[0].Peers[0].IpBlock.Cidr);
        await silo.Client.NetworkPolicies.CreateAsync(Block("bits6", "fd00:1::7/48", "fd00:1::7/128"));
        await Fails(StatusCode.InvalidArgument, () => silo.Client.NetworkPolicies.CreateAsync(Block("outside", "10.60.3.7/16", "10.61.0.9/24")),
            "spec.ingress[0].peers[0].ip_block.except[0]", "must lie strictly within 10.60.0.0/16");
        await Fails(StatusCode.InvalidArgument, () => silo.Client.NetworkPolicies.CreateAsync(Block("family", "10.60.0.0/16", "fd00::/64")),
            "spec.ingress[0].peers[0].ip_block.except[0]", "fd00::/64 is IPv6 and 10.60.0.0/16 is IPv4: an exception is of its block's family");
    }

    [Fact]
    public async Task Node_UnderlayThatIsNotACanonicalUnicastAddress_IsInvalidArgument_AndChangesNothing()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var before = await PositionAsync(silo.Client);

        string[] refused =
        [
            "", "1", "1.2.3", "0x7f.1", "010.1.1.1", "1.2.3.4.5", " 10.0.0.9", "fe80::1%eth0", "::ffff:10.0.0.9",
            "127.0.0.1", "::1", "0.0.0.0", "0.1.2.3", "::", "169.254.1.1", "fe80::1", "224.0.0.1", "ff02::1", "255.255.255.255",
            new string('9', 70_000),
        ];
        foreach (var ip in refused)
        {
            await Fails(StatusCode.InvalidArgument, () => silo.Client.Nodes.CreateAsync(Node("node-x", ip)), "spec.underlay_ip");
        }
        var node = await silo.Client.Nodes.GetAsync("", "node-a");
        node.Spec.UnderlayIp = "127.0.0.2";
        await Fails(StatusCode.InvalidArgument, () => silo.Client.Nodes.UpdateAsync(node), "spec.underlay_ip");
        Assert.Equal(before, await PositionAsync(silo.Client));

        // Accepted addresses are stored in canonical form.
        Assert.Equal("fd00::a", (await silo.Client.Nodes.CreateAsync(Node("node-v6", "FD00:0:0::000A"))).Spec.UnderlayIp);
    }

    [Fact]
    public async Task Node_UnderlayHeldByAnotherNode_IsAlreadyExistsNamingIt_AndAnUpdateMovesTheClaim()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var b = await silo.Client.Nodes.CreateAsync(Node("node-b", "fd00::b"));
        var before = await PositionAsync(silo.Client);

        await Fails(StatusCode.AlreadyExists, () => silo.Client.Nodes.CreateAsync(Node("node-c", "10.255.0.1")), "spec.underlay_ip", "node 'node-a'");
        // The same address spelled differently is the same address.
        await Fails(StatusCode.AlreadyExists, () => silo.Client.Nodes.CreateAsync(Node("node-c", "FD00:0::B")), "spec.underlay_ip", "node 'node-b'");
        b.Spec.UnderlayIp = "10.255.0.1";
        await Fails(StatusCode.AlreadyExists, () => silo.Client.Nodes.UpdateAsync(b), "spec.underlay_ip", "node 'node-a'");
        Assert.Equal(before, await PositionAsync(silo.Client));
        Assert.Equal("fd00::b", (await silo.Client.Nodes.GetAsync("", "node-b")).Spec.UnderlayIp);

        // An update to a free address moves the claim: the old one is free, the new one held.
        b.Spec.UnderlayIp = "10.255.0.2";
        await silo.Client.Nodes.UpdateAsync(b);
        await silo.Client.Nodes.CreateAsync(Node("node-c", "fd00::b"));
        await Fails(StatusCode.AlreadyExists, () => silo.Client.Nodes.CreateAsync(Node("node-d", "10.255.0.2")), "spec.underlay_ip", "node 'node-b'");
        // A heartbeat (a status write) keeps the claim.
        await silo.Client.HeartbeatAsync("node-b", status: new AgentStatus { PolicyIssues = { new PolicyIssue { Reason = "test" } } });
        Assert.Single((await silo.Client.Nodes.GetAsync("", "node-b")).Status.Agent.PolicyIssues);
        await Fails(StatusCode.AlreadyExists, () => silo.Client.Nodes.CreateAsync(Node("node-d", "10.255.0.2")), "spec.underlay_ip", "node 'node-b'");

        // A deleted node's address is free again.
        await silo.Client.Nodes.DeleteAsync("", "node-a");
        await silo.Client.Nodes.CreateAsync(Node("node-d", "10.255.0.1"));
    }
}
