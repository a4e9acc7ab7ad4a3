using System.Text.Json.Nodes;
using ControlPlane.Contracts.Attachments;

namespace ControlPlane.Cni.Tests;

/// <summary>The plugin run as a runtime runs it: VERSION, STATUS, error objects, chaining, endpoint ownership.</summary>
[Collection("cni")]
public sealed class ProtocolTests(CniBed bed)
{
    private CniCluster Cluster => bed.Cluster;

    [Fact]
    public async Task VersionAndStatus_AnswerAsTheSpecSays()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));

        var version = Runtimes.Plugin(Cluster, 1, "VERSION", new JsonObject { ["cniVersion"] = "1.0.0" }, netns: "dummy", interfaceName: "dummy");
        Assert.True(version.Code == 0, version.ToString());
        Assert.Equal("1.0.0", version.Json["cniVersion"]!.GetValue<string>());
        Assert.Equal(["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"], version.Json["supportedVersions"]!.AsArray().Select(v => v!.GetValue<string>()));

        var ready = Runtimes.Plugin(Cluster, 1, "STATUS", config);
        Assert.True(ready.Code == 0, ready.ToString());
        Assert.Equal("", ready.Output);

        var noNetwork = (JsonObject)config.DeepClone();
        noNetwork["network"] = "absent";
        var notReady = Runtimes.Plugin(Cluster, 1, "STATUS", noNetwork);
        Assert.Equal(1, notReady.Code);
        Assert.Equal(50, notReady.Json["code"]!.GetValue<int>());
        Assert.Equal("network 'absent' does not exist", notReady.Json["details"]!.GetValue<string>());

        var noAgent = (JsonObject)config.DeepClone();
        noAgent["agentSocket"] = Path.Combine(Cluster.Directory, "absent.sock");
        var unreachable = Runtimes.Plugin(Cluster, 1, "STATUS", noAgent);
        Assert.Equal(51, unreachable.Json["code"]!.GetValue<int>());

        // A plain file where the socket should be, and a socket nothing listens on (the agent was
        // killed): the details say what failed on the socket, not the channel's placeholder address.
        var plain = Path.Combine(Cluster.Directory, $"plain-{vni}.sock");
        File.WriteAllText(plain, "");
        var stale = Path.Combine(Cluster.Directory, $"stale-{vni}.sock");
        using (var listener = new System.Net.Sockets.Socket(System.Net.Sockets.AddressFamily.Unix, System.Net.Sockets.SocketType.Stream, System.Net.Sockets.ProtocolType.Unspecified))
        {
            // .NET unlinks the path it bound when the socket closes; a killed process leaves it. A
            // second link to the socket's inode stays as such a leftover.
            listener.Bind(new System.Net.Sockets.UnixDomainSocketEndPoint(stale + ".bound"));
            Shell.Must("ln", stale + ".bound", stale);
        }
        foreach (var (path, says) in new[] { (plain, "is not a socket (a regular file)"), (stale, "connection refused (no agent listens on it)") })
        {
            var broken = (JsonObject)config.DeepClone();
            broken["agentSocket"] = path;
            var status = Runtimes.Plugin(Cluster, 1, "STATUS", broken);
            Assert.Equal(51, status.Json["code"]!.GetValue<int>());
            Assert.Equal($"agent socket {path}: {says}", status.Json["details"]!.GetValue<string>());
            var del = Runtimes.Plugin(Cluster, 1, "DEL", broken, $"broken-{vni}", "/run/netns/absent");
            Assert.Equal(11, del.Json["code"]!.GetValue<int>());
            Assert.Equal("detach: the node agent is unavailable (Unavailable)", del.Json["msg"]!.GetValue<string>());
            Assert.Equal($"agent socket {path}: {says}", del.Json["details"]!.GetValue<string>());
        }
        // And where nothing is at all (checked before any connect):
        Assert.Equal($"agent socket {noAgent["agentSocket"]}: does not exist", unreachable.Json["details"]!.GetValue<string>());
    }

    /// <summary>Run by hand (no CNI_COMMAND), the plugin answers --help and --version like every program; under a runtime it never does.</summary>
    [Fact]
    public void ByHand_HelpAndVersionAnswer_UnderARuntime_TheyDoNot()
    {
        var plugin = Path.Combine(Cluster.PluginDirectory, "controlplane");
        var version = Shell.Run(plugin, "--version");
        Assert.Equal(0, version.Code);
        Assert.Matches(@"^controlplane \d+\.\d+\.\d+ \(CNI [0-9., ]+\)\s*$", version.Output);
        var help = Shell.Run(plugin, "--help");
        Assert.Equal(0, help.Code);
        Assert.Contains("CNI_COMMAND", help.Output);

        var underRuntime = Shell.Run(new Dictionary<string, string> { ["CNI_COMMAND"] = "VERSION" }, "", plugin, "--help");
        Assert.Equal(0, underRuntime.Code);
        Assert.Contains("supportedVersions", underRuntime.Output);
    }

    [Theory]
    [InlineData("ADD", "{not json", "c1", "eth0", 6, "the configuration is not valid JSON")]
    [InlineData("ADD", """{"cniVersion":"2.0.0","name":"x","network":"n"}""", "c1", "eth0", 1, "cniVersion '2.0.0' is not supported")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x"}""", "c1", "eth0", 7, "the configuration names no network")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n"}""", "", "eth0", 4, "invalid CNI environment variables")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n"}""", "c1", "bad/name", 4, "invalid CNI environment variables")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","runtimeConfig":{"ips":["not-an-ip"]}}""", "c1", "eth0", 7, "a requested address is not an IP address")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","args":{"cni":{"ports":[{"name":"a","port":1,"protocol":"ICMP"}]}}}""", "c1", "eth0", 7, "args.cni.ports[0].protocol must be TCP, UDP or SCTP")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","args":{"cni":{"ports":[{"name":"a","port":"80"}]}}}""", "c1", "eth0", 7, "args.cni.ports[0].port has the wrong type")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","network":"m"}""", "c1", "eth0", 6, "the configuration is not valid JSON")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","labels":"x"}""", "c1", "eth0", 7, "labels must be an object")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","labels":["a"]}""", "c1", "eth0", 7, "labels must be an object")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","dns":"x"}""", "c1", "eth0", 7, "dns must be an object")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","dns":{"nameservers":"10.0.0.1"}}""", "c1", "eth0", 7, "dns.nameservers must be a list of strings")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","dns":{"search":[1]}}""", "c1", "eth0", 7, "dns.search[0] has the wrong type")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","runtimeConfig":"x"}""", "c1", "eth0", 7, "runtimeConfig must be an object")]
    [InlineData("ADD", """{"cniVersion":"1.0.0","name":"x","network":"n","args":{"cni":{"labels":{"a":"b"}}}}""", "c1", "eth0", 7, "args.cni.labels must be a list of {key, value}")]
    [InlineData("GC", """{"cniVersion":"1.0.0","name":"x","network":"n"}""", "", "", 1, "GC needs cniVersion 1.1.0 or later")]
    [InlineData("CHECK", """{"cniVersion":"1.1.0","name":"x","network":"n"}""", "c1", "eth0", 7, "CHECK needs prevResult")]
    [InlineData("FROB", """{"cniVersion":"1.1.0","name":"x","network":"n"}""", "c1", "eth0", 4, "unknown CNI_COMMAND 'FROB'")]
    public void BadInput_ErrorObjectWithTheSpecsCode_NoStackTrace(string command, string stdin, string containerId, string interfaceName, int code, string message)
    {
        var environment = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command, ["CNI_CONTAINERID"] = containerId, ["CNI_NETNS"] = "/proc/self/ns/net", ["CNI_IFNAME"] = interfaceName, ["CNI_PATH"] = Cluster.PluginDirectory,
        };
        var (exit, output, error) = Shell.Run(environment, stdin, Path.Combine(Cluster.PluginDirectory, "controlplane"));
        Assert.Equal(1, exit);
        Assert.Equal("", error);
        var json = JsonNode.Parse(output)!;
        Assert.Equal(code, json["code"]!.GetValue<int>());
        Assert.Equal(message, json["msg"]!.GetValue<string>());
        Assert.NotNull(json["cniVersion"]);
        Assert.DoesNotContain("   at ", output, StringComparison.Ordinal);
    }

    /// <summary>A key of CNI_ARGS that the plugin reads, given twice, is an environment error (4) rather than one of its values picked; other keys may repeat.</summary>
    [Theory]
    [InlineData("IP=10.77.0.60;IP=10.77.0.61", 4)]
    [InlineData("K8S_POD_NAME=a;K8S_POD_NAME=b", 4)]
    [InlineData("IgnoreUnknown=1;IgnoreUnknown=1;IP=not-an-ip", 4)]
    public void CniArgs_AKeyReadTwice_IsRefused(string cniArgs, int code)
    {
        var environment = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = "c1", ["CNI_NETNS"] = "/proc/self/ns/net", ["CNI_IFNAME"] = "eth0", ["CNI_ARGS"] = cniArgs, ["CNI_PATH"] = Cluster.PluginDirectory,
        };
        var (exit, output, _) = Shell.Run(environment, """{"cniVersion":"1.0.0","name":"x","network":"n"}""", Path.Combine(Cluster.PluginDirectory, "controlplane"));
        Assert.Equal(1, exit);
        var json = JsonNode.Parse(output)!;
        Assert.Equal(code, json["code"]!.GetValue<int>());
        Assert.Contains(cniArgs.StartsWith("Ignore", StringComparison.Ordinal) ? "not-an-ip" : "twice", json["details"]!.GetValue<string>(), StringComparison.Ordinal);
    }

    /// <summary>A runtime passes the workload's named ports in args.cni.ports: they become the endpoint's, for named target ports and policy ports.</summary>
    [Fact]
    public async Task Add_NamedPortsInArgs_AreTheEndpointsPorts()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        config["args"] = JsonNode.Parse("""{"cni":{"ports":[{"name":"http","port":8080},{"name":"dns","port":53,"protocol":"udp"}]}}""");
        var pod = Cluster.Netns($"p{vni}");
        Cluster.AddNamespace(pod);
        var args = $"K8S_POD_NAMESPACE=default;K8S_POD_NAME=ported-{vni}";

        var added = Runtimes.Plugin(Cluster, 1, "ADD", config, $"ported-{vni}", $"/run/netns/{pod}", cniArgs: args);

        Assert.True(added.Code == 0, added.ToString());
        var endpoint = await Cluster.Client.Endpoints.GetAsync("default", $"ported-{vni}");
        Assert.Equal([("http", 8080u, ControlPlane.Contracts.V1.Protocol.Tcp), ("dns", 53u, ControlPlane.Contracts.V1.Protocol.Udp)], endpoint.Spec.Ports.Select(p => (p.Name, p.Port, p.Protocol)));
        var deleted = Runtimes.Plugin(Cluster, 1, "DEL", config, $"ported-{vni}", $"/run/netns/{pod}", cniArgs: args);
        Assert.True(deleted.Code == 0, deleted.ToString());
    }

    [Fact]
    public async Task Add_AfterAnotherPlugin_AppendsToPrevResultAndChecksAgainstIt()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var pod = Cluster.Netns($"p{vni}");
        Cluster.AddNamespace(pod);
        var netns = $"/run/netns/{pod}";
        config["prevResult"] = JsonNode.Parse($$"""
            {"cniVersion":"1.1.0","interfaces":[{"name":"net0","sandbox":"{{netns}}"}],
             "ips":[{"address":"192.168.77.2/24","interface":0}],"dns":{"nameservers":["192.168.77.1"]},"custom":"kept"}
            """);

        var added = Runtimes.Plugin(Cluster, 1, "ADD", config, "chained-1", netns);
        Assert.True(added.Code == 0, added.ToString());
        var result = added.Json;
        Assert.Equal("kept", result["custom"]!.GetValue<string>());
        Assert.Equal(["net0", result["interfaces"]![1]!["name"]!.GetValue<string>(), "eth0"], result["interfaces"]!.AsArray().Select(i => i!["name"]!.GetValue<string>()));
        Assert.True(result["interfaces"]![2]!["mtu"]!.GetValue<int>() > 0, "1.1.0 results carry the interface's MTU");
        Assert.Equal([0, 2], result["ips"]!.AsArray().Select(i => i!["interface"]!.GetValue<int>()));
        Assert.Equal(["192.168.77.1", CniCluster.DnsAddress], result["dns"]!["nameservers"]!.AsArray().Select(n => n!.GetValue<string>()));

        config["prevResult"] = result.DeepClone();
        var check = Runtimes.Plugin(Cluster, 1, "CHECK", config, "chained-1", netns);
        Assert.True(check.Code == 0, check.ToString());
        var deleted = Runtimes.Plugin(Cluster, 1, "DEL", config, "chained-1", netns);
        Assert.True(deleted.Code == 0, deleted.ToString());
        Assert.Equal("", deleted.Output);
    }

    /// <summary>
    /// A DEL without the pod name and namespace its ADD had (a runtime that lost them, a hand-run
    /// cnitool) names the endpoint for the container id; the agent finds the container's endpoint
    /// by its attachment and detaches it then, rather than leaving it to the orphan sweep.
    /// </summary>
    [Fact]
    public async Task Del_WithoutThePodNameItsAddHad_DetachesTheContainersEndpoint()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var (pod, other) = (Cluster.Netns($"p{vni}"), Cluster.Netns($"q{vni}"));
        Cluster.AddNamespace(pod);
        Cluster.AddNamespace(other);
        var args = $"K8S_POD_NAMESPACE=default;K8S_POD_NAME=named-{vni}";
        var added = Runtimes.Plugin(Cluster, 1, "ADD", config, $"ctr-{vni}", $"/run/netns/{pod}", cniArgs: args);
        Assert.True(added.Code == 0, added.ToString());
        var second = Runtimes.Plugin(Cluster, 1, "ADD", config, $"bystander-{vni}", $"/run/netns/{other}", cniArgs: $"K8S_POD_NAMESPACE=default;K8S_POD_NAME=bystander-{vni}");
        Assert.True(second.Code == 0, second.ToString());

        var deleted = Runtimes.Plugin(Cluster, 1, "DEL", config, $"ctr-{vni}", $"/run/netns/{pod}");

        Assert.True(deleted.Code == 0, deleted.ToString());
        var gone = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => Cluster.Client.Endpoints.GetAsync("default", $"named-{vni}"));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, gone.StatusCode);
        Assert.NotEqual(0, Shell.Run("ip", "-n", pod, "link", "show", "eth0").Code);
        // Repeated, it is still success; the other container's endpoint is untouched.
        Assert.True(Runtimes.Plugin(Cluster, 1, "DEL", config, $"ctr-{vni}", $"/run/netns/{pod}").Code == 0);
        Assert.Equal($"bystander-{vni}", (await Cluster.Client.Endpoints.GetAsync("default", $"bystander-{vni}")).Metadata.Labels[AttachmentLabels.ContainerId]);
        Assert.Equal(0, Shell.Run("ip", "-n", other, "link", "show", "eth0").Code);
        Assert.True(Runtimes.Plugin(Cluster, 1, "DEL", config, $"bystander-{vni}", $"/run/netns/{other}", cniArgs: $"K8S_POD_NAMESPACE=default;K8S_POD_NAME=bystander-{vni}").Code == 0);
    }

    /// <summary>
    /// The spec's attachment is (network name, container, interface): the same container's eth0
    /// through a second configuration is another attachment. Its ADD is refused (the interface is
    /// the first's: 121; into a fresh namespace, the endpoint is the first's: 109) without moving
    /// anything, and its DEL and GC leave the first alone; GC through the first configuration,
    /// which needs no network, detaches it.
    /// </summary>
    [Fact]
    public async Task Add_SameContainerThroughAnotherConfiguration_IsAnotherAttachment_ItsDelAndGcLeaveTheFirstAlone()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var first = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var second = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"d{vni}", network, host: 1));
        var (pod, fresh) = (Cluster.Netns($"p{vni}a"), Cluster.Netns($"p{vni}b"));
        Cluster.AddNamespace(pod);
        Cluster.AddNamespace(fresh);
        var added = Runtimes.Plugin(Cluster, 1, "ADD", first, $"ctr-{vni}", $"/run/netns/{pod}");
        Assert.True(added.Code == 0, added.ToString());
        var endpoint = await Cluster.Client.Endpoints.GetAsync("default", $"ctr-{vni}");
        var wired = Shell.Must("ip", "-n", pod, "-o", "address", "show", "dev", "eth0");

        var again = Runtimes.Plugin(Cluster, 1, "ADD", second, $"ctr-{vni}", $"/run/netns/{pod}");
        Assert.True(again.Code == 1, again.ToString());
        Assert.Equal(121, again.Json["code"]!.GetValue<int>());
        var elsewhere = Runtimes.Plugin(Cluster, 1, "ADD", second, $"ctr-{vni}", $"/run/netns/{fresh}");
        Assert.True(elsewhere.Code == 1, elsewhere.ToString());
        Assert.Equal(109, elsewhere.Json["code"]!.GetValue<int>());
        Assert.Contains($"attached through network configuration 'c{vni}'", elsewhere.Json["details"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.NotEqual(0, Shell.Run("ip", "-n", fresh, "link", "show", "eth0").Code);

        var deleted = Runtimes.Plugin(Cluster, 1, "DEL", second, $"ctr-{vni}", $"/run/netns/{pod}");
        Assert.True(deleted.Code == 0, deleted.ToString());
        var gc = second.DeepClone().AsObject();
        gc.Remove("network");
        gc["cni.dev/valid-attachments"] = new JsonArray();
        var collected = Runtimes.Plugin(Cluster, 1, "GC", gc);
        Assert.True(collected.Code == 0, collected.ToString());
        Assert.Equal(endpoint.Metadata.Uid, (await Cluster.Client.Endpoints.GetAsync("default", $"ctr-{vni}")).Metadata.Uid);
        Assert.Equal(wired, Shell.Must("ip", "-n", pod, "-o", "address", "show", "dev", "eth0"));

        gc["name"] = $"c{vni}";
        var collectedFirst = Runtimes.Plugin(Cluster, 1, "GC", gc);
        Assert.True(collectedFirst.Code == 0, collectedFirst.ToString());
        var gone = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => Cluster.Client.Endpoints.GetAsync("default", $"ctr-{vni}"));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, gone.StatusCode);
    }

    [Fact]
    public async Task Add_PodNameHeldByAnotherContainer_RefusedAndItsDelLeavesTheOwnerAlone()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 2));
        var (p1, p2) = (Cluster.Netns($"p{vni}a"), Cluster.Netns($"p{vni}b"));
        Cluster.AddNamespace(p1);
        Cluster.AddNamespace(p2);
        const string Args = "IgnoreUnknown=1;K8S_POD_NAMESPACE=default;K8S_POD_NAME=Web_0";

        var owner = Runtimes.Plugin(Cluster, 2, "ADD", config, "owner-1", $"/run/netns/{p1}", cniArgs: Args);
        Assert.True(owner.Code == 0, owner.ToString());
        var name = EndpointIdentity.EndpointName("Web_0");
        Assert.Matches("^web-0-[0-9a-f]{8}$", name);
        var endpoint = await Cluster.Client.Endpoints.GetAsync("default", name);
        Assert.Equal("owner-1", endpoint.Metadata.Labels[AttachmentLabels.ContainerId]);

        var intruder = Runtimes.Plugin(Cluster, 2, "ADD", config, "intruder-2", $"/run/netns/{p2}", cniArgs: Args);
        Assert.Equal(1, intruder.Code);
        Assert.Equal(109, intruder.Json["code"]!.GetValue<int>());
        Assert.Contains($"endpoint default/{name} exists, attached for container owner-1", intruder.Json["details"]!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True(Runtimes.Plugin(Cluster, 2, "DEL", config, "intruder-2", $"/run/netns/{p2}", cniArgs: Args).Code == 0);
        Assert.Equal(endpoint.Metadata.Uid, (await Cluster.Client.Endpoints.GetAsync("default", name)).Metadata.Uid);
        Assert.Equal(0, Shell.Run("ip", "-n", p1, "link", "show", "eth0").Code);

        Assert.True(Runtimes.Plugin(Cluster, 2, "DEL", config, "owner-1", $"/run/netns/{p1}", cniArgs: Args).Code == 0);
        Assert.NotEqual(0, Shell.Run("ip", "-n", p1, "link", "show", "eth0").Code);
    }

    /// <summary>
    /// An agent that accepts the connection and never answers (stopped, or hung) is "try again
    /// later" (11), as an unreachable one is, not a refusal; a namespace the agent cannot see
    /// (mounted only in the runtime's own mount namespace) is refused saying so, and so is the
    /// host's own namespace, before anything is made there.
    /// </summary>
    [Fact]
    public async Task Add_HungAgentIsTryAgainLater_ANamespaceTheAgentCannotSeeIsNamed()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var pod = Cluster.Netns($"p{vni}");
        Cluster.AddNamespace(pod);

        Cluster.SignalAgent(1, "STOP");
        Runtimes.Outcome hung;
        try
        {
            hung = Runtimes.Plugin(Cluster, 1, "ADD", config, $"hung-{vni}", $"/run/netns/{pod}");
        }
        finally
        {
            Cluster.SignalAgent(1, "CONT");
        }
        Assert.True(hung.Code == 1, hung.ToString());
        Assert.Equal(11, hung.Json["code"]!.GetValue<int>());
        // As a runtime does after a failed ADD (the resumed agent may still carry out the request).
        Assert.True(Runtimes.Plugin(Cluster, 1, "DEL", config, $"hung-{vni}", $"/run/netns/{pod}").Code == 0);

        // The runtime's private bind mount of the namespace: an empty file where the agent looks.
        var hidden = Path.Combine(Cluster.Directory, $"hidden-{vni}");
        File.WriteAllText(hidden, "");
        var environment = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = "ADD", ["CNI_CONTAINERID"] = $"hidden-{vni}", ["CNI_NETNS"] = hidden, ["CNI_IFNAME"] = "eth0", ["CNI_PATH"] = Cluster.PluginDirectory,
        };
        var (code, output, _) = Shell.Run(environment, config.ToJsonString(), "unshare", "--mount", "--propagation", "private", "sh", "-c",
            "mount --bind \"$0\" \"$1\" && exec ip netns exec \"$2\" \"$3\"", $"/run/netns/{pod}", hidden, Cluster.Host(1), Path.Combine(Cluster.PluginDirectory, "controlplane"));
        Assert.True(code == 1, output);
        var refused = JsonNode.Parse(output)!;
        Assert.Equal(103, refused["code"]!.GetValue<int>());
        Assert.Contains("is not a network namespace as the node agent sees it", refused["details"]!.GetValue<string>(), StringComparison.Ordinal);
        var missing = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await Cluster.Client.Endpoints.GetAsync("default", EndpointIdentity.EndpointName($"hidden-{vni}")));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, missing.StatusCode);

        // The host's own namespace (a runtime misconfigured, or hostNetwork passed to the plugin):
        // refused before anything is made, and the host keeps its interfaces and routes.
        string HostState() => Shell.Must("ip", "netns", "exec", Cluster.Host(1), "sh", "-c", "ip -br addr; ip route; ip -6 route");
        var before = HostState();
        var own = Runtimes.Plugin(Cluster, 1, "ADD", config, $"own-{vni}", $"/run/netns/{Cluster.Host(1)}", interfaceName: "net7");
        Assert.True(own.Code == 1, own.ToString());
        Assert.Equal(103, own.Json["code"]!.GetValue<int>());
        Assert.Contains("is the node agent's own network namespace (the host's)", own.Json["details"]!.GetValue<string>(), StringComparison.Ordinal);
        missing = await Assert.ThrowsAsync<Grpc.Core.RpcException>(async () => await Cluster.Client.Endpoints.GetAsync("default", EndpointIdentity.EndpointName($"own-{vni}")));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, missing.StatusCode);
        Assert.Equal(before, HostState());
    }

    /// <summary>
    /// An ADD cut short after the agent made the endpoint and the veth pair (the agent was killed
    /// while wiring) leaves the container's interface unfinished; the same ADD again completes
    /// it instead of failing on the interface it began.
    /// </summary>
    [Fact]
    public async Task Add_RepeatedAfterOneCutShort_CompletesTheInterfaceItBegan()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var pod = Cluster.Netns($"p{vni}");
        Cluster.AddNamespace(pod);
        var added = Runtimes.Plugin(Cluster, 1, "ADD", config, $"cut-{vni}", $"/run/netns/{pod}");
        Assert.True(added.Code == 0, added.ToString());
        var address = added.Json["ips"]![0]!["address"]!.GetValue<string>();
        // What the agent leaves when it dies between creating the pair and configuring its far end.
        Shell.Must("ip", "-n", pod, "address", "flush", "dev", "eth0");
        Shell.Must("ip", "-n", pod, "link", "set", "eth0", "down");

        var again = Runtimes.Plugin(Cluster, 1, "ADD", config, $"cut-{vni}", $"/run/netns/{pod}");
        Assert.True(again.Code == 0, again.ToString());
        Assert.Equal(address, again.Json["ips"]![0]!["address"]!.GetValue<string>());
        Assert.Contains(address, Shell.Must("ip", "-n", pod, "-o", "address", "show", "dev", "eth0"), StringComparison.Ordinal);
        Assert.Contains("state UP", Shell.Must("ip", "-n", pod, "link", "show", "eth0"), StringComparison.Ordinal);

        // Another container's interface of that name is still not taken over.
        var other = Runtimes.Plugin(Cluster, 1, "ADD", config, $"other-{vni}", $"/run/netns/{pod}");
        Assert.Equal(121, other.Json["code"]!.GetValue<int>());
        Assert.True(Runtimes.Plugin(Cluster, 1, "DEL", config, $"cut-{vni}", $"/run/netns/{pod}").Code == 0);
    }

    /// <summary>
    /// A repeated ADD of a wired container leaves its interface up and what others added to it in
    /// place (another plugin's route). The same container ADDed into another container's namespace
    /// does not take over the interface there (121, nothing changed); ADDed into a fresh namespace
    /// (its sandbox made again while the old one stayed, its DEL lost) it moves there.
    /// </summary>
    [Fact]
    public async Task Add_Repeated_KeepsAWiredInterface_AndNeverTakesAnotherContainersInterface()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var (mine, theirs, fresh) = (Cluster.Netns($"p{vni}a"), Cluster.Netns($"p{vni}b"), Cluster.Netns($"p{vni}c"));
        foreach (var pod in new[] { mine, theirs, fresh }) Cluster.AddNamespace(pod);
        var added = Runtimes.Plugin(Cluster, 1, "ADD", config, $"mine-{vni}", $"/run/netns/{mine}");
        Assert.True(added.Code == 0, added.ToString());
        var address = added.Json["ips"]![0]!["address"]!.GetValue<string>().Split('/')[0];
        var gateway = added.Json["ips"]![0]!["gateway"]!.GetValue<string>();
        var other = Runtimes.Plugin(Cluster, 1, "ADD", config, $"theirs-{vni}", $"/run/netns/{theirs}");
        Assert.True(other.Code == 0, other.ToString());
        var otherAddress = other.Json["ips"]![0]!["address"]!.GetValue<string>().Split('/')[0];
        Shell.Must("ip", "-n", mine, "route", "add", "198.51.100.0/24", "via", gateway, "dev", "eth0", "onlink");

        var again = Runtimes.Plugin(Cluster, 1, "ADD", config, $"mine-{vni}", $"/run/netns/{mine}");
        Assert.True(again.Code == 0, again.ToString());
        Assert.Contains("198.51.100.0/24", Shell.Must("ip", "-n", mine, "route", "show", "dev", "eth0"), StringComparison.Ordinal);

        var theirsBefore = Shell.Must("ip", "-n", theirs, "-4", "-o", "address", "show", "dev", "eth0") + Shell.Must("ip", "-n", theirs, "-o", "link", "show", "eth0");
        var taken = Runtimes.Plugin(Cluster, 1, "ADD", config, $"mine-{vni}", $"/run/netns/{theirs}");
        Assert.True(taken.Code == 1, taken.ToString());
        Assert.Equal(121, taken.Json["code"]!.GetValue<int>());
        var theirsAfter = Shell.Must("ip", "-n", theirs, "-4", "-o", "address", "show", "dev", "eth0") + Shell.Must("ip", "-n", theirs, "-o", "link", "show", "eth0");
        Assert.Equal(theirsBefore, theirsAfter);
        Assert.Contains(otherAddress, theirsAfter, StringComparison.Ordinal);
        Assert.DoesNotContain(address + "/", theirsAfter, StringComparison.Ordinal);
        Assert.Contains(address, Shell.Must("ip", "-n", mine, "-o", "address", "show", "dev", "eth0"), StringComparison.Ordinal);

        var moved = Runtimes.Plugin(Cluster, 1, "ADD", config, $"mine-{vni}", $"/run/netns/{fresh}");
        Assert.True(moved.Code == 0, moved.ToString());
        Assert.Contains(address + "/", Shell.Must("ip", "-n", fresh, "-o", "address", "show", "dev", "eth0"), StringComparison.Ordinal);
        Assert.DoesNotContain("eth0", Shell.Must("ip", "-n", mine, "-o", "link", "show"), StringComparison.Ordinal);
        foreach (var (id, pod) in new[] { ($"mine-{vni}", fresh), ($"theirs-{vni}", theirs) })
        {
            Assert.True(Runtimes.Plugin(Cluster, 1, "DEL", config, id, $"/run/netns/{pod}").Code == 0);
        }
    }

    /// <summary>
    /// A container removed while its DEL could not get through (podman removes it anyway, and
    /// podman 4 never calls GC): its namespace, and with it its interface, is gone. The agent
    /// detaches its endpoint after the grace period (3 s here), freeing its name and address for
    /// the container's successor; an endpoint made through the API, with no interface ever, stays.
    /// An endpoint an attach made but never wired (the ADD cut short after the control plane
    /// created it) goes too, and the log tells the two causes apart: it does not claim a namespace
    /// is gone that may still be there.
    /// </summary>
    [Fact]
    public async Task Del_NeverArrived_TheAgentDetachesTheEndpointWhoseInterfaceIsGone()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var (first, second) = (Cluster.Netns($"p{vni}a"), Cluster.Netns($"p{vni}b"));
        Cluster.AddNamespace(first);
        Cluster.AddNamespace(second);
        var args = $"K8S_POD_NAMESPACE=default;K8S_POD_NAME=gone-{vni}";
        var made = await Cluster.Client.Endpoints.CreateAsync(new ControlPlane.Contracts.V1.Endpoint
        {
            Metadata = new ControlPlane.Contracts.V1.ObjectMeta { Namespace = "default", Name = $"api-{vni}" },
            Spec = new ControlPlane.Contracts.V1.EndpointSpec { Network = network, Node = "host-1", Ready = true },
        });
        var added = Runtimes.Plugin(Cluster, 1, "ADD", config, $"gone-{vni}a", $"/run/netns/{first}", cniArgs: args);
        Assert.True(added.Code == 0, added.ToString());
        var address = added.Json["ips"]![0]!["address"]!.GetValue<string>();

        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var deleted = await WatchForDeleteAsync($"gone-{vni}", watching.Token);
        var cutDeleted = await WatchForDeleteAsync($"cut-{vni}", watching.Token);
        // What an ADD leaves when the silo dies after creating the endpoint, before the agent heard back: never wired.
        var cut = new ControlPlane.Contracts.V1.Endpoint
        {
            Metadata = new ControlPlane.Contracts.V1.ObjectMeta { Namespace = "default", Name = $"cut-{vni}" },
            Spec = new ControlPlane.Contracts.V1.EndpointSpec { Network = network, Node = "host-1", Ready = true },
        };
        foreach (var (label, value) in AttachmentLabels.For($"cut-{vni}", "eth0")) cut.Metadata.Labels[label] = value;
        await Cluster.Client.Endpoints.CreateAsync(cut);
        // Which namespace it was, to name whatever still holds it should the sweep never see its veth go.
        var nsfs = Shell.Must("stat", "-L", "-c", "%i", $"/run/netns/{first}").Trim();
        Shell.Must("ip", "netns", "del", first);
        await WithLogAsync(1, deleted, () => HoldersOf(nsfs));
        await WithLogAsync(1, cutDeleted);
        await Cluster.WaitForLogAsync(1, $"Endpoint default/gone-{vni} (container gone-{vni}a) has had no interface for 00:00:03: its interface, which this agent wired or saw, is gone without a DEL", 1, TimeSpan.FromSeconds(10));
        await Cluster.WaitForLogAsync(1, $"Endpoint default/cut-{vni} (container cut-{vni}) has had no interface for 00:00:03 and none since this agent started: it was never wired", 1, TimeSpan.FromSeconds(10));
        Assert.Equal(0, Cluster.LogLines(1, "namespace is gone"));

        Assert.Equal(made.Metadata.Uid, (await Cluster.Client.Endpoints.GetAsync("default", $"api-{vni}")).Metadata.Uid);
        // The successor of the same name can have its address too (allocation would move on to the next).
        var asking = (JsonObject)config.DeepClone();
        asking["runtimeConfig"] = new JsonObject { ["ips"] = new JsonArray(address) };
        var successor = Runtimes.Plugin(Cluster, 1, "ADD", asking, $"gone-{vni}b", $"/run/netns/{second}", cniArgs: args);
        Assert.True(successor.Code == 0, successor.ToString());
        Assert.Equal(address, successor.Json["ips"]![0]!["address"]!.GetValue<string>());
        Assert.True(Runtimes.Plugin(Cluster, 1, "DEL", config, $"gone-{vni}b", $"/run/netns/{second}", cniArgs: args).Code == 0);
        await Cluster.Client.Endpoints.DeleteAsync("default", $"api-{vni}");
    }

    /// <summary>
    /// An endpoint an ADD makes is ready only once its interface is wired: it is created not
    /// ready, so an ADD cut short after the create (a silo killed before it answered) leaves no
    /// ready endpoint without an interface for services and DNS to send clients to.
    /// </summary>
    [Fact]
    public async Task Add_TheEndpointBecomesReadyOnlyOnceItsInterfaceIsWired()
    {
        var vni = bed.NextVni();
        var network = (await Cluster.CreateNetworkAsync($"n{vni}", vni)).Metadata.Name;
        var config = Runtimes.PluginConfig(Cluster, Cluster.WriteConfList($"c{vni}", network, host: 1));
        var pod = Cluster.Netns($"p{vni}");
        Cluster.AddNamespace(pod);
        var name = $"wired-{vni}";
        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        var seen = await WatchEndpointAsync(name, (_, endpoint) => endpoint.Spec.Ready, watching.Token);

        var added = Runtimes.Plugin(Cluster, 1, "ADD", config, name, $"/run/netns/{pod}");
        Assert.True(added.Code == 0, added.ToString());
        Assert.Equal([false, true], (await seen).Select(e => e.Spec.Ready));
        Assert.True((await Cluster.Client.Endpoints.GetAsync("default", name)).Spec.Ready);

        // DEL needs no network: a configuration edited since the ADD still cleans up.
        var edited = (JsonObject)config.DeepClone();
        edited.Remove("network");
        var deleted = Runtimes.Plugin(Cluster, 1, "DEL", edited, name, $"/run/netns/{pod}");
        Assert.True(deleted.Code == 0, deleted.ToString());
        var gone = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => Cluster.Client.Endpoints.GetAsync("default", name));
        Assert.Equal(Grpc.Core.StatusCode.NotFound, gone.StatusCode);
    }

    /// <summary>Awaits <paramref name="task"/>; when it fails, fails with host <paramref name="n"/>'s agent log, which says what the agent did meanwhile.</summary>
    /// <param name="more">What else to say then (read at the moment of failing).</param>
    private async Task WithLogAsync(int n, Task task, Func<string>? more = null)
    {
        try
        {
            await task;
        }
        catch (Exception e) when (e is Grpc.Core.RpcException or OperationCanceledException)
        {
            var links = Shell.Run("ip", "-n", Cluster.Host(n), "-d", "link", "show").Output;
            throw new Xunit.Sdk.XunitException($"{e.Message}\n{more?.Invoke()}\nhost {n}'s links:\n{links}\nhost {n}'s log:\n{Cluster.Log(n)}");
        }
    }

    /// <summary>The threads and open files of this machine's processes that are in, or hold, the network namespace of nsfs inode <paramref name="inode"/>.</summary>
    private static string HoldersOf(string inode)
    {
        var name = $"net:[{inode}]";
        var holders = new List<string>();
        foreach (var process in Directory.EnumerateDirectories("/proc").Where(d => int.TryParse(Path.GetFileName(d), out _)))
        {
            try
            {
                var command = File.ReadAllText(Path.Combine(process, "cmdline")).Replace('\0', ' ').Trim();
                foreach (var task in Directory.EnumerateDirectories(Path.Combine(process, "task")))
                {
                    if (new FileInfo(Path.Combine(task, "ns", "net")).LinkTarget == name)
                        holders.Add($"thread {task} ('{File.ReadAllText(Path.Combine(task, "comm")).Trim()}') of {command}");
                }
                foreach (var fd in Directory.EnumerateFileSystemEntries(Path.Combine(process, "fd")))
                {
                    if (new FileInfo(fd).LinkTarget == name) holders.Add($"file {fd} of {command}");
                }
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // Gone while we looked.
            }
        }
        return $"the workload's namespace ({name}) is held by: {(holders.Count == 0 ? "nothing (left to the kernel's cleanup)" : string.Join("; ", holders))}";
    }

    /// <summary>A watch of the endpoints of "default", running when this returns: its task completes when endpoint <paramref name="name"/> is deleted.</summary>
    private Task<Task<List<ControlPlane.Contracts.V1.Endpoint>>> WatchForDeleteAsync(string name, CancellationToken cancellationToken) =>
        WatchEndpointAsync(name, (type, _) => type == ControlPlane.Contracts.V1.EventType.Deleted, cancellationToken);

    /// <summary>
    /// A watch of the endpoints of "default", running (synced) when this returns: its task
    /// completes with every event of endpoint <paramref name="name"/>, up to the first that
    /// satisfies <paramref name="until"/>.
    /// </summary>
    private async Task<Task<List<ControlPlane.Contracts.V1.Endpoint>>> WatchEndpointAsync(string name,
        Func<ControlPlane.Contracts.V1.EventType, ControlPlane.Contracts.V1.Endpoint, bool> until, CancellationToken cancellationToken)
    {
        var synced = new TaskCompletionSource();
        var seen = Task.Run(async () =>
        {
            var events = new List<ControlPlane.Contracts.V1.Endpoint>();
            var request = new ControlPlane.Contracts.V1.WatchRequest { Kinds = { ControlPlane.Contracts.V1.Kind.Endpoint }, Namespace = "default" };
            await foreach (var e in Cluster.Client.WatchAsync(request, cancellationToken: cancellationToken))
            {
                if (e.InitialEventsEnd) synced.TrySetResult();
                if (e.Endpoint?.Metadata.Name != name) continue;
                events.Add(e.Endpoint);
                if (until(e.Type, e.Endpoint)) return events;
            }
            return events;
        }, cancellationToken);
        await Task.WhenAny(synced.Task, seen);
        if (seen.IsFaulted || seen.IsCanceled) await seen;
        return seen;
    }
}
