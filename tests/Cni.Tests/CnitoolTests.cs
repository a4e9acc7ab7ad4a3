using System.Text.Json.Nodes;
using ControlPlane.Contracts.Attachments;
using Grpc.Core;

namespace ControlPlane.Cni.Tests;

/// <summary>cnitool (libcni) drives the plugin: ADD, CHECK, DEL on hosts with agents.</summary>
[Collection("cni")]
public sealed class CnitoolTests(CniBed bed)
{
    private CniCluster Cluster => bed.Cluster;

    [Fact]
    public async Task AddCheckDel_DualStackAcrossTwoHosts_ReachableThenGoneAndRepeatable()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni, dualStack: true)).Metadata.Name;
        var one = Cluster.WriteConfList($"c{vni}a", network, host: 1);
        var two = Cluster.WriteConfList($"c{vni}b", network, host: 2);
        var (p1, p2) = (Cluster.Netns($"p{vni}a"), Cluster.Netns($"p{vni}b"));
        Cluster.AddNamespace(p1);
        Cluster.AddNamespace(p2);

        var added = Runtimes.Cni(Cluster, 1, "add", one, $"/run/netns/{p1}");
        Assert.True(added.Code == 0, added.ToString());
        var other = Runtimes.Cni(Cluster, 2, "add", two, $"/run/netns/{p2}");
        Assert.True(other.Code == 0, other.ToString());

        var result = added.Json;
        Assert.Equal("1.0.0", result["cniVersion"]!.GetValue<string>());
        var interfaces = result["interfaces"]!.AsArray();
        Assert.Equal(2, interfaces.Count);
        var host = interfaces[0]!["name"]!.GetValue<string>();
        Assert.StartsWith("cpe", host, StringComparison.Ordinal);
        Assert.Null(interfaces[0]!["sandbox"]);
        Assert.Equal("eth0", interfaces[1]!["name"]!.GetValue<string>());
        Assert.Equal($"/run/netns/{p1}", interfaces[1]!["sandbox"]!.GetValue<string>());
        var ips = result["ips"]!.AsArray();
        Assert.Equal(2, ips.Count);
        Assert.All(ips, ip => Assert.Equal(1, ip!["interface"]!.GetValue<int>()));
        var v4 = ips.Single(ip => ip!["address"]!.GetValue<string>().EndsWith("/32", StringComparison.Ordinal))!;
        var v6 = ips.Single(ip => ip!["address"]!.GetValue<string>().EndsWith("/128", StringComparison.Ordinal))!;
        var routes = result["routes"]!.AsArray().Select(r => (r!["dst"]!.GetValue<string>(), r["gw"]!.GetValue<string>())).ToList();
        Assert.Contains(("0.0.0.0/0", v4["gateway"]!.GetValue<string>()), routes);
        Assert.Contains(("::/0", v6["gateway"]!.GetValue<string>()), routes);
        Assert.Equal([CniCluster.DnsAddress], result["dns"]!["nameservers"]!.AsArray().Select(n => n!.GetValue<string>()));
        Assert.Equal(["default.svc.cluster.local", "svc.cluster.local", "cluster.local"], result["dns"]!["search"]!.AsArray().Select(n => n!.GetValue<string>()));

        // The endpoint is named after the container and records it.
        var containerId = Runtimes.CnitoolContainerId($"/run/netns/{p1}");
        var endpoint = await Cluster.Client.Endpoints.GetAsync("default", containerId);
        Assert.Equal("host-1", endpoint.Spec.Node);
        Assert.Equal(AttachmentLabels.Key(containerId, "eth0"), endpoint.Metadata.Labels[AttachmentLabels.Attachment]);
        Assert.Equal(containerId, endpoint.Metadata.Labels[AttachmentLabels.ContainerId]);
        Assert.Equal(one, endpoint.Metadata.Labels[AttachmentLabels.CniNetwork]);

        var target = other.Json["ips"]!.AsArray().Select(ip => ip!["address"]!.GetValue<string>().Split('/')[0]).ToList();
        foreach (var address in target)
        {
            Assert.True(CniCluster.Ping(p1, address, TimeSpan.FromSeconds(10)), $"{p1} cannot reach {address} on host 2");
        }

        var check = Runtimes.Cni(Cluster, 1, "check", one, $"/run/netns/{p1}");
        Assert.True(check.Code == 0, check.ToString());

        var deleted = Runtimes.Cni(Cluster, 1, "del", one, $"/run/netns/{p1}");
        Assert.True(deleted.Code == 0, deleted.ToString());
        var again = Runtimes.Cni(Cluster, 1, "del", one, $"/run/netns/{p1}");
        Assert.True(again.Code == 0, again.ToString());
        var gone = await Assert.ThrowsAsync<RpcException>(() => Cluster.Client.Endpoints.GetAsync("default", containerId));
        Assert.Equal(StatusCode.NotFound, gone.StatusCode);
        Assert.NotEqual(0, Shell.Run("ip", "-n", Cluster.Host(1), "link", "show", host).Code);
        Assert.NotEqual(0, Shell.Run("ip", "-n", p1, "link", "show", "eth0").Code);
        Assert.False(CniCluster.Ping(p2, v4["address"]!.GetValue<string>().Split('/')[0], TimeSpan.FromSeconds(1)));

        // A container can come back after its DEL.
        var readded = Runtimes.Cni(Cluster, 1, "add", one, $"/run/netns/{p1}");
        Assert.True(readded.Code == 0, readded.ToString());
        Assert.True(Runtimes.Cni(Cluster, 1, "del", one, $"/run/netns/{p1}").Code == 0);
        Assert.True(Runtimes.Cni(Cluster, 2, "del", two, $"/run/netns/{p2}").Code == 0);
        Assert.Empty(Directory.EnumerateFiles(Path.Combine(Cluster.VarLib, "cni", "results")));
    }

    /// <summary>
    /// A container on two networks: eth0 keeps the default routes, eth1 routes its own network's
    /// prefixes (so the second network's endpoints are reached through it), a third interface on
    /// either network is refused, and removing eth1 leaves eth0 as it was.
    /// </summary>
    [Fact]
    public async Task ASecondInterface_RoutesItsNetwork_LeavesTheFirstsDefaultRoutes_AndItsDelLeavesThemToo()
    {
        var (vni, vni2) = (bed.NextVni(), bed.NextVni());
        var (first, second) = ((await Cluster.CreateNetworkAsync($"n{vni}", vni, dualStack: true)).Metadata.Name,
            (await Cluster.CreateNetworkAsync($"n{vni2}", vni2, dualStack: true)).Metadata.Name);
        var primary = Cluster.WriteConfList($"c{vni}a", first, host: 1);
        var secondary = Cluster.WriteConfList($"c{vni}b", second, host: 1);
        var remote = Cluster.WriteConfList($"c{vni}c", second, host: 2);
        var (pod, peer) = (Cluster.Netns($"p{vni}a"), Cluster.Netns($"p{vni}b"));
        Cluster.AddNamespace(pod);
        Cluster.AddNamespace(peer);
        string Defaults(string family) => Shell.Must("ip", "-n", pod, family, "route", "show", "default");

        var eth0 = Runtimes.Cni(Cluster, 1, "add", primary, $"/run/netns/{pod}");
        Assert.True(eth0.Code == 0, eth0.ToString());
        var eth1 = Runtimes.Cni(Cluster, 1, "add", secondary, $"/run/netns/{pod}", interfaceName: "eth1");
        Assert.True(eth1.Code == 0, eth1.ToString());
        var other = Runtimes.Cni(Cluster, 2, "add", remote, $"/run/netns/{peer}");
        Assert.True(other.Code == 0, other.ToString());
        // A second interface on a network the container is on already: refused, saying so, and nothing is left of it.
        var twice = Runtimes.Cni(Cluster, 1, "add", secondary, $"/run/netns/{pod}", interfaceName: "eth2");
        Assert.True(twice.Code != 0 && twice.Error.Contains($"attach refused (FailedPrecondition); interface_name: the workload is on network", StringComparison.Ordinal)
            && twice.Error.Contains($"through eth1 already", StringComparison.Ordinal), twice.ToString());
        Assert.DoesNotContain("eth2", Shell.Must("ip", "-n", pod, "link", "show"), StringComparison.Ordinal);

        Assert.Contains("dev eth0", Defaults("-4"), StringComparison.Ordinal);
        Assert.Contains("dev eth0", Defaults("-6"), StringComparison.Ordinal);
        Assert.DoesNotContain("eth1", Defaults("-4") + Defaults("-6"), StringComparison.Ordinal);
        var destinations = eth1.Json["routes"]!.AsArray().Select(r => r!["dst"]!.GetValue<string>()).ToList();
        Assert.Equal([$"10.{vni2 % 200 + 20}.0.0/16", $"fd00:{vni2}::/64"], destinations.Order());
        Assert.Contains("0.0.0.0/0", eth0.Json["routes"]!.AsArray().Select(r => r!["dst"]!.GetValue<string>()));
        // The second network's endpoint on the other host, through eth1.
        foreach (var address in other.Json["ips"]!.AsArray().Select(ip => ip!["address"]!.GetValue<string>().Split('/')[0]))
        {
            Assert.True(CniCluster.Ping(pod, address, TimeSpan.FromSeconds(10)), $"{pod} cannot reach {address} on host 2 through eth1");
        }
        Assert.True(Runtimes.Cni(Cluster, 1, "check", secondary, $"/run/netns/{pod}", interfaceName: "eth1").Code == 0);

        var removed = Runtimes.Cni(Cluster, 1, "del", secondary, $"/run/netns/{pod}", interfaceName: "eth1");
        Assert.True(removed.Code == 0, removed.ToString());
        Assert.Contains("dev eth0", Defaults("-4"), StringComparison.Ordinal);
        Assert.Contains("dev eth0", Defaults("-6"), StringComparison.Ordinal);
        var check = Runtimes.Cni(Cluster, 1, "check", primary, $"/run/netns/{pod}");
        Assert.True(check.Code == 0, check.ToString());

        Assert.True(Runtimes.Cni(Cluster, 1, "del", primary, $"/run/netns/{pod}").Code == 0);
        Assert.True(Runtimes.Cni(Cluster, 2, "del", remote, $"/run/netns/{peer}").Code == 0);
    }

    [Fact]
    public async Task Check_InterfaceAddressOrRouteChangedByHand_FailsNamingIt()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var conf = Cluster.WriteConfList($"c{vni}", network, host: 1);
        var pod = Cluster.Netns($"p{vni}");
        Cluster.AddNamespace(pod);
        var added = Runtimes.Cni(Cluster, 1, "add", conf, $"/run/netns/{pod}");
        Assert.True(added.Code == 0, added.ToString());
        var ip = added.Json["ips"]![0]!;
        var (address, gateway) = (ip["address"]!.GetValue<string>(), ip["gateway"]!.GetValue<string>());
        Runtimes.Outcome Check() => Runtimes.Cni(Cluster, 1, "check", conf, $"/run/netns/{pod}");
        Assert.True(Check().Code == 0, Check().ToString());

        Shell.Must("ip", "-n", pod, "route", "del", "default");
        var noRoute = Check();
        Assert.NotEqual(0, noRoute.Code);
        Assert.Contains($"route 0.0.0.0/0 via {gateway} dev eth0 is missing", noRoute.Error, StringComparison.Ordinal);
        Shell.Must("ip", "-n", pod, "route", "add", "default", "via", gateway, "dev", "eth0", "onlink");
        Assert.True(Check().Code == 0, Check().ToString());

        Shell.Must("ip", "-n", pod, "addr", "del", address, "dev", "eth0");
        var noAddress = Check();
        Assert.NotEqual(0, noAddress.Code);
        Assert.Contains($"address {address} is missing on eth0", noAddress.Error, StringComparison.Ordinal);
        Shell.Must("ip", "-n", pod, "addr", "add", address, "dev", "eth0");
        // Removing the interface's last address took its routes with it.
        Shell.Must("ip", "-n", pod, "route", "replace", "default", "via", gateway, "dev", "eth0", "onlink");
        var prefix = added.Json["routes"]!.AsArray().Select(r => r!["dst"]!.GetValue<string>()).Single(d => d != "0.0.0.0/0");
        Shell.Must("ip", "-n", pod, "route", "replace", prefix, "via", gateway, "dev", "eth0", "onlink");
        Assert.True(Check().Code == 0, Check().ToString());

        // A 1.0.0 result has no MTU: CHECK compares the endpoint's.
        var mtu = Shell.Must("ip", "netns", "exec", pod, "cat", "/sys/class/net/eth0/mtu").Trim();
        Shell.Must("ip", "-n", pod, "link", "set", "eth0", "mtu", "1400");
        var otherMtu = Check();
        Assert.NotEqual(0, otherMtu.Code);
        Assert.Contains("interface eth0 has MTU 1400, not ", otherMtu.Error, StringComparison.Ordinal);
        Shell.Must("ip", "-n", pod, "link", "set", "eth0", "mtu", mtu);
        Assert.True(Check().Code == 0, Check().ToString());

        Shell.Must("ip", "-n", pod, "link", "set", "eth0", "address", "02:00:00:00:00:01");
        var otherMac = Check();
        Assert.NotEqual(0, otherMac.Code);
        Assert.Contains("interface eth0 has MAC 02:00:00:00:00:01", otherMac.Error, StringComparison.Ordinal);

        Shell.Must("ip", "-n", pod, "link", "set", "eth0", "name", "eth7");
        var renamed = Check();
        Assert.NotEqual(0, renamed.Code);
        Assert.Contains("interface eth0 is missing in the container", renamed.Error, StringComparison.Ordinal);

        Assert.True(Runtimes.Cni(Cluster, 1, "del", conf, $"/run/netns/{pod}").Code == 0);
    }

    [Fact]
    public async Task Add_RequestedAddressByCapabilityOrCniArgs_TakenAddressSaysWhoHoldsIt()
    {
        var vni = bed.NextVni();
        var network = await Cluster.CreateNetworkAsync($"n{vni}", vni);
        var prefix = network.Spec.Ipv4Cidr.Split('.')[..2];
        var (wanted, next) = ($"{prefix[0]}.{prefix[1]}.5.7", $"{prefix[0]}.{prefix[1]}.5.8");
        var conf = Cluster.WriteConfList($"c{vni}", network.Metadata.Name, host: 1);
        var (p1, p2) = (Cluster.Netns($"p{vni}a"), Cluster.Netns($"p{vni}b"));
        Cluster.AddNamespace(p1);
        Cluster.AddNamespace(p2);

        var first = Runtimes.Cni(Cluster, 1, "add", conf, $"/run/netns/{p1}", capabilityArgs: $$"""{"ips":["{{wanted}}/16"]}""");
        Assert.True(first.Code == 0, first.ToString());
        Assert.Equal($"{wanted}/32", first.Json["ips"]![0]!["address"]!.GetValue<string>());

        // The same address again, through CNI_ARGS: refused, naming the holder.
        var taken = Runtimes.Cni(Cluster, 1, "add", conf, $"/run/netns/{p2}", cniArgs: $"IgnoreUnknown=1;IP={wanted}");
        Assert.NotEqual(0, taken.Code);
        Assert.Contains($"requested address {wanted} is already in use", taken.Error, StringComparison.Ordinal);
        Assert.Contains($"held by Endpoint default/{Runtimes.CnitoolContainerId($"/run/netns/{p1}")}", taken.Error, StringComparison.Ordinal);
        // The refused container got nothing.
        Assert.NotEqual(0, Shell.Run("ip", "-n", p2, "link", "show", "eth0").Code);

        var second = Runtimes.Cni(Cluster, 1, "add", conf, $"/run/netns/{p2}", cniArgs: $"IgnoreUnknown=1;IP={next}/16");
        Assert.True(second.Code == 0, second.ToString());
        Assert.Equal($"{next}/32", second.Json["ips"]![0]!["address"]!.GetValue<string>());
        Assert.True(CniCluster.Ping(p2, wanted, TimeSpan.FromSeconds(5)));

        Assert.True(Runtimes.Cni(Cluster, 1, "del", conf, $"/run/netns/{p1}").Code == 0);
        Assert.True(Runtimes.Cni(Cluster, 1, "del", conf, $"/run/netns/{p2}").Code == 0);
    }

    [Fact]
    public async Task Gc_ContainersNotInValidAttachments_TheirAttachmentsRemovedOthersKept()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var conf = Cluster.WriteConfList($"c{vni}", network, host: 1);
        var otherConf = Cluster.WriteConfList($"c{vni}x", network, host: 1);
        var pods = new[] { "a", "b", "c" }.Select(s => Cluster.Netns($"p{vni}{s}")).ToArray();
        foreach (var pod in pods) Cluster.AddNamespace(pod);
        Assert.True(Runtimes.Cni(Cluster, 1, "add", conf, $"/run/netns/{pods[0]}").Code == 0);
        var stale = Runtimes.Cni(Cluster, 1, "add", conf, $"/run/netns/{pods[1]}");
        Assert.True(stale.Code == 0, stale.ToString());
        Assert.True(Runtimes.Cni(Cluster, 1, "add", otherConf, $"/run/netns/{pods[2]}").Code == 0);
        var staleHost = stale.Json["interfaces"]![0]!["name"]!.GetValue<string>();
        var ids = pods.Select(p => Runtimes.CnitoolContainerId($"/run/netns/{p}")).ToArray();

        // cnitool of Debian bookworm (libcni 1.1.2) has no gc: the call is made as libcni makes it.
        var config = Runtimes.PluginConfig(Cluster, conf);
        config["cni.dev/valid-attachments"] = new JsonArray(new JsonObject { ["containerID"] = ids[0], ["ifname"] = "eth0" });
        var gc = Runtimes.Plugin(Cluster, 1, "GC", config);
        Assert.True(gc.Code == 0, gc.ToString());
        Assert.Equal("", gc.Output);

        var remaining = (await Cluster.Client.Endpoints.ListAsync(new Contracts.V1.ListRequest { Namespace = "default" })).Endpoints.Select(e => e.Metadata.Name).ToList();
        Assert.Contains(ids[0], remaining);
        Assert.DoesNotContain(ids[1], remaining);
        Assert.Contains(ids[2], remaining); // another network configuration's: not this GC's to judge
        Assert.NotEqual(0, Shell.Run("ip", "-n", Cluster.Host(1), "link", "show", staleHost).Code);
        Assert.True(Runtimes.Cni(Cluster, 1, "check", conf, $"/run/netns/{pods[0]}").Code == 0);

        var repeated = Runtimes.Plugin(Cluster, 1, "GC", config);
        Assert.True(repeated.Code == 0, repeated.ToString());
        Assert.True(Runtimes.Cni(Cluster, 1, "del", conf, $"/run/netns/{pods[1]}").Code == 0); // DEL after GC still succeeds
        Assert.True(Runtimes.Cni(Cluster, 1, "del", conf, $"/run/netns/{pods[0]}").Code == 0);
        Assert.True(Runtimes.Cni(Cluster, 1, "del", otherConf, $"/run/netns/{pods[2]}").Code == 0);
    }
}
