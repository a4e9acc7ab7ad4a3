using System.Text.Json.Nodes;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cli.Tests;

/// <summary>
/// The ClusterSet kinds through netctl against one silo: a peer that cannot be reached (stored
/// with Joined=Unknown), a service export that the silo imports itself (its cluster id is
/// "default"), the read-only imports, clusterset info, and the client-side checks.
/// </summary>
public sealed class ClusterSetTests
{
    // Creating a peer waits this long for it to answer (3 s by default).
    private static readonly string[] ShortProbe = ["--ClusterSet:PeerProbeTimeout=00:00:00.5"];

    [Fact]
    public async Task ClusterPeer_Unreachable_IsAppliedUnjoinedAndItsLinkShowsOnGetAndDescribe()
    {
        await using var silo = await Silo.StartAsync(settings: ShortProbe);
        using var dir = new TempDirectory();
        var manifest = dir.File("peer.yaml", """
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: east, labels: {region: eu}}
            spec:
              addresses: [http://127.0.0.1:1]
            """);

        var applied = await Netctl.RunAsync(silo, "apply", "-f", manifest);

        Assert.True(applied.ExitCode == 0, applied.ToString());
        Assert.Equal(["clusterpeer/east created"], applied.OutputLines);
        var stored = await silo.Client.ClusterPeers.GetAsync("", "east");
        Assert.Equal(["http://127.0.0.1:1"], stored.Spec.Addresses);
        var joined = Assert.Single(stored.Status.Conditions);
        Assert.Equal(("Joined", "Unknown", "Unreachable"), (joined.Type, joined.Status, joined.Reason));

        // A listing does not carry the link (computed by Get): CONNECTED is "-" there.
        var list = await Netctl.RunAsync(silo, "get", "clusterpeers");
        Assert.True(list.ExitCode == 0, list.ToString());
        Assert.Equal(["NAME", "JOINED", "CONNECTED", "ADDRESSES", "AGE"], Words(list.OutputLines[0]));
        Assert.Equal(["east", "Unknown", "-", "http://127.0.0.1:1"], Words(list.OutputLines[1])[..4]);
        var one = await Netctl.RunAsync(silo, "get", "cp", "east");
        Assert.Equal(["east", "Unknown", "False", "http://127.0.0.1:1"], Words(one.OutputLines[1])[..4]);
        var wide = await Netctl.RunAsync(silo, "get", "cp", "-o", "wide");
        Assert.Equal(["NAME", "JOINED", "CONNECTED", "ADDRESSES", "REASON", "PEER-JOINED", "RANGES", "NODES", "AGE"], Words(wide.OutputLines[0]));
        Assert.Equal(["east", "Unknown", "-", "http://127.0.0.1:1", "Unreachable", "-", "<none>", "0"], Words(wide.OutputLines[1])[..8]);
        var yaml = await Netctl.RunAsync(silo, "get", "clusterpeer", "east", "-o", "yaml");
        Assert.StartsWith("apiVersion: controlplane/v1\nkind: ClusterPeer\n", yaml.Output);
        Assert.Contains("  connection:\n", yaml.Output);

        var described = await Netctl.RunAsync(silo, "describe", "cp", "east");
        Assert.True(described.ExitCode == 0, described.ToString());
        Assert.Contains("Kind:         ClusterPeer\n", described.Output);
        Assert.Contains("Joined:       Unknown\n", described.Output);
        Assert.Contains("Connected:    False\n", described.Output);
        Assert.Contains("Peer joined:  -\n", described.Output); // the peer's view of this cluster: never read
        Assert.Matches(@"\n  Warning +Unreachable +Joined=Unknown since \S+: no silo at spec\.addresses answered", described.Output);
        Assert.Matches(@"\n  Warning +NotConnected +", described.Output);
        Assert.DoesNotContain("Namespace:", described.Output);
        // describe without a name reads each listed peer again, for its link.
        Assert.Contains("Connected:    False\n", (await Netctl.RunAsync(silo, "describe", "clusterpeers")).Output);

        // The output of get applies as it is; a changed address list updates the peer.
        var again = await Netctl.RunAsync(silo, "apply", "-f", dir.File("get.yaml", yaml.Output));
        Assert.True(again.ExitCode == 0, again.ToString());
        Assert.Equal(["clusterpeer/east unchanged"], again.OutputLines);
        var moved = await Netctl.RunAsync(silo, "apply", "-f", dir.File("moved.yaml", File.ReadAllText(manifest).Replace("[http://127.0.0.1:1]", "[http://127.0.0.1:1, unix:/run/east.sock]", StringComparison.Ordinal)));
        Assert.True(moved.ExitCode == 0, moved.ToString());
        Assert.Equal(["clusterpeer/east configured"], moved.OutputLines);
        Assert.Equal(["http://127.0.0.1:1", "unix:/run/east.sock"], (await silo.Client.ClusterPeers.GetAsync("", "east")).Spec.Addresses);

        var namespaced = await Netctl.RunAsync(silo, "get", "cp", "shop/east");
        Assert.Equal(2, namespaced.ExitCode);
        var deleted = await Netctl.RunAsync(silo, "delete", "clusterpeer", "east");
        Assert.True(deleted.ExitCode == 0, deleted.ToString());
        Assert.Equal(["clusterpeer/east deleted"], deleted.OutputLines);
        Assert.Empty((await silo.Client.ClusterPeers.ListAsync(new ListRequest())).ClusterPeers);
    }

    [Fact]
    public async Task ServiceExport_KubernetesStyle_IsImportedByItsOwnClusterAndWithdrawnWhenDeleted()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        using var imports = Netctl.Stream(["--server", silo.Address, "watch", "serviceimports", "-n", "shop", "-o", "json"]);
        Assert.Contains("\"BOOKMARK\"", await imports.ReadLineAsync());

        // As a Kubernetes user writes it: Kubernetes' apiVersion, no spec.
        var applied = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: """
            kind: ServiceExport
            apiVersion: multicluster.x-k8s.io/v1alpha1
            metadata: {name: web, namespace: shop}
            """);

        Assert.True(applied.ExitCode == 0, applied.ToString());
        Assert.Equal(["serviceexport/shop/web created"], applied.OutputLines);
        // The silo imports its own export once the service's two endpoints are in it.
        var line = await imports.ReadUntilAsync(l => JsonNode.Parse(l)!["object"]!["status"]?["clusters"]?[0]?["endpoints"]?.AsArray().Count(e => (bool?)e!["ready"] == true) == 2);
        var imported = JsonNode.Parse(line)!["object"]!;
        Assert.Equal(("ServiceImport", "default"), ((string?)imported["kind"], (string?)imported["status"]!["clusters"]![0]!["cluster"]));
        var ips = imported["spec"]!["ips"]!.AsArray().Select(ip => (string)ip!).ToList();
        Assert.Equal(2, ips.Count);
        await WaitForExportConditionsAsync(silo);

        var exports = await Netctl.RunAsync(silo, "get", "svcex", "-A");
        Assert.True(exports.ExitCode == 0, exports.ToString());
        Assert.Equal(["NAMESPACE", "NAME", "VALID", "CONFLICT", "AGE"], Words(exports.OutputLines[0]));
        Assert.Equal(["shop", "web", "True", "False"], Words(exports.OutputLines[1])[..4]);
        var table = await Netctl.RunAsync(silo, "get", "serviceimports", "-A");
        Assert.Equal(["NAMESPACE", "NAME", "TYPE", "IPS", "CLUSTERS", "AGE"], Words(table.OutputLines[0]));
        Assert.Equal(["shop", "web", "ClusterSetIP", string.Join(",", ips), "default"], Words(table.OutputLines[1])[..5]);
        var wide = await Netctl.RunAsync(silo, "get", "svcim", "-n", "shop", "-o", "wide");
        Assert.Equal(["NAME", "TYPE", "IPS", "CLUSTERS", "PORTS", "READY", "AGE"], Words(wide.OutputLines[0]));
        Assert.Equal(["web", "ClusterSetIP", string.Join(",", ips), "default", "80/TCP", "2/2"], Words(wide.OutputLines[1])[..6]);

        var export = await Netctl.RunAsync(silo, "describe", "serviceexport", "shop/web");
        Assert.True(export.ExitCode == 0, export.ToString());
        Assert.Contains("Valid:        True\nConflict:     False\n", export.Output);
        Assert.Contains($"Import:       ClusterSetIP {string.Join(",", ips)} from default\n", export.Output);
        Assert.Matches(@"\n  Normal +Valid +Valid=True since ", export.Output);
        var import = await Netctl.RunAsync(silo, "describe", "svcim", "web", "-n", "shop");
        Assert.True(import.ExitCode == 0, import.ToString());
        Assert.Contains("  type: CLUSTER_SET_IP\n", import.Output);
        Assert.Matches(@"\nClusters:\n  CLUSTER +READY +PORTS +EXPORTED\n  default +2/2 +80:http/TCP +\d{4}-", import.Output);

        // Imports are derived: no delete, no apply.
        var refused = await Netctl.RunAsync(silo, "delete", "serviceimport", "shop/web");
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("ServiceImport objects are derived by the control plane", Assert.Single(refused.Errors));
        var yaml = (await Netctl.RunAsync(silo, "get", "svcim", "shop/web", "-o", "yaml")).Output;
        using var dir = new TempDirectory();
        var reapplied = await Netctl.RunAsync(silo, "apply", "-f", dir.File("import.yaml", yaml));
        Assert.Equal(1, reapplied.ExitCode);
        Assert.Contains("kind: ServiceImport objects are derived by the control plane and cannot be applied", Assert.Single(reapplied.Errors));

        // Unexported: the import goes.
        var deleted = await Netctl.RunAsync(silo, "delete", "svcex", "shop/web");
        Assert.True(deleted.ExitCode == 0, deleted.ToString());
        Assert.Equal(["serviceexport/shop/web deleted"], deleted.OutputLines);
        await imports.ReadUntilAsync(l => (string?)JsonNode.Parse(l)!["type"] == "DELETED");
        var none = await Netctl.RunAsync(silo, "get", "svcim", "-A");
        Assert.True(none.ExitCode == 0, none.ToString());
        Assert.Contains("No serviceimports found.", none.Error);
    }

    [Fact]
    public async Task Apply_BadClusterSetManifests_NameEachFieldAndWriteNothing()
    {
        await using var silo = await Silo.StartAsync(settings: ShortProbe);
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Example("01-namespace.yaml"))).ExitCode);
        var before = await silo.ObjectsAsync();
        using var dir = new TempDirectory();
        var bad = dir.File("bad.yaml", $$"""
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: West_1}
            spec:
              addresses: ["http://a:1,http://b:2", "ftp://x", "unix:/run/cp.sock", "unix:", "unix:relative/path", "http://127.0.0.1:0"]
            ---
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: north}
            spec: {addresses: []}
            ---
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: south}
            ---
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: many}
            spec: {addresses: [{{string.Join(", ", Enumerable.Range(1, 17).Select(i => $"http://10.0.0.{i}:7070"))}}]}
            ---
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: west, namespace: shop}
            spec: {addresses: [http://127.0.0.1:1]}
            ---
            kind: ServiceExport
            apiVersion: multicluster.x-k8s.io/v1alpha1
            metadata: {name: 1web, namespace: shop}
            ---
            kind: ServiceExport
            apiVersion: multicluster.x-k8s.io/v1beta1
            metadata: {name: web, namespace: shop}
            spec: {}
            ---
            kind: ClusterPeer
            apiVersion: multicluster.x-k8s.io/v1alpha1
            metadata: {name: up}
            spec: {addresses: [http://127.0.0.1:1]}
            ---
            kind: ServiceImport
            apiVersion: multicluster.x-k8s.io/v1alpha1
            metadata: {name: web, namespace: shop}
            """);

        var result = await Netctl.RunAsync(silo, "apply", "-f", bad);

        Assert.Equal(1, result.ExitCode);
        string[] expected =
        [
            "bad.yaml: document 1 (ClusterPeer West_1) (line 3): metadata.name: 'West_1' must consist of lower-case letters, digits and '-'",
            "bad.yaml: document 1 (ClusterPeer West_1) (line 5): spec.addresses[0]: 'http://a:1,http://b:2' is neither http(s)://host:port nor unix:/path (one address per item)",
            "bad.yaml: document 1 (ClusterPeer West_1) (line 5): spec.addresses[1]: 'ftp://x' is neither http(s)://host:port nor unix:/path",
            "bad.yaml: document 1 (ClusterPeer West_1) (line 5): spec.addresses[3]: 'unix:' names no socket path (unix:/path)",
            "bad.yaml: document 1 (ClusterPeer West_1) (line 5): spec.addresses[4]: 'unix:relative/path' has a relative socket path, which each silo would resolve in its own working directory (unix:/path)",
            "bad.yaml: document 1 (ClusterPeer West_1) (line 5): spec.addresses[5]: 'http://127.0.0.1:0' has port 0, on which no silo can be reached (a port is 1 to 65535)",
            "bad.yaml: document 2 (ClusterPeer north) (line 10): spec.addresses: names no silo address",
            "bad.yaml: document 3 (ClusterPeer south) (line 12): spec: is required",
            "bad.yaml: document 4 (ClusterPeer many) (line 19): spec.addresses: names 17 addresses (at most 16)",
            "bad.yaml: document 5 (ClusterPeer west) (line 23): metadata.namespace: a ClusterPeer is cluster-scoped and takes no namespace",
            "bad.yaml: document 6 (ServiceExport shop/1web) (line 28): metadata.name: '1web' must start with a letter (it names a service)",
            "bad.yaml: document 7 (line 31): apiVersion: 'multicluster.x-k8s.io/v1beta1' is not controlplane/v1 or multicluster.x-k8s.io/v1alpha1",
            "bad.yaml: document 7 (ServiceExport shop/web) (line 33): spec: unknown field (the fields of ServiceExport are metadata, status)",
            "bad.yaml: document 8 (line 36): apiVersion: 'multicluster.x-k8s.io/v1alpha1' is not controlplane/v1",
            "bad.yaml: document 9 (line 40): kind: ServiceImport objects are derived by the control plane and cannot be applied",
        ];
        Assert.True(result.Errors.Length == expected.Length, result.ToString());
        for (var i = 0; i < expected.Length; i++) Assert.Contains(expected[i], result.Errors[i]);
        Assert.Contains($"{expected.Length} problem(s) found; nothing was changed", result.Error);
        Assert.Empty(result.Output);

        // What only the server knows: its own cluster id is no peer's name; the export's namespace must exist.
        var plan = await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: """
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: default}
            spec: {addresses: [http://127.0.0.1:1]}
            ---
            apiVersion: controlplane/v1
            kind: ServiceExport
            metadata: {name: web, namespace: billing}
            """);
        Assert.Equal(1, plan.ExitCode);
        Assert.Equal(
        [
            "error: <stdin>: document 1 (ClusterPeer default) (line 3): metadata.name: 'default' is this cluster's own id (ClusterSet:ClusterId); a peer is named by its cluster id",
            "error: <stdin>: document 2 (ServiceExport billing/web) (line 8): metadata.namespace: namespace 'billing' exists neither on the server nor in the manifests",
        ], plan.Errors);

        // Tiers: peers after the networks, exports after the services, whatever the order in the input.
        var tiers = await Netctl.RunAsync(["--server", silo.Address, "apply", "--dry-run=server", "-f", "-"], stdin: """
            kind: ServiceExport
            apiVersion: multicluster.x-k8s.io/v1alpha1
            metadata: {name: web, namespace: shop}
            ---
            apiVersion: controlplane/v1
            kind: ClusterPeer
            metadata: {name: east}
            spec: {addresses: [http://127.0.0.1:1]}
            ---
            apiVersion: controlplane/v1
            kind: Network
            metadata: {name: red}
            spec: {vni: 200, ipv4_cidr: 10.20.0.0/16}
            """);
        Assert.True(tiers.ExitCode == 0, tiers.ToString());
        Assert.Equal(["network/red created (server dry run)", "clusterpeer/east created (server dry run)", "serviceexport/shop/web created (server dry run)"], tiers.OutputLines);
        Assert.Equal(before, await silo.ObjectsAsync());
    }

    [Fact]
    public async Task ApplyDryRun_SeesTheServiceRangesAndTheRangesOfJoinedPeers()
    {
        // Two members: east has a network; west peers with it (so east's range is held in west).
        await using var east = await Silo.StartAsync(settings: ["--ClusterSet:ClusterId=east", "--ControlPlane:ServiceIpv4Cidr=10.98.0.0/16", "--ControlPlane:ServiceIpv6Cidr=fd00:98::/108"]);
        await using var west = await Silo.StartAsync(settings: ["--ClusterSet:ClusterId=west", "--ControlPlane:ServiceIpv4Cidr=10.97.0.0/16", "--ControlPlane:ServiceIpv6Cidr=fd00:97::/108"]);
        await east.Client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "red" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.20.0.0/16" } });
        var peer = await west.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new ObjectMeta { Name = "east" }, Spec = new ClusterPeerSpec { Addresses = { east.Address } } });
        Assert.Contains(peer.Status.Conditions, c => c is { Type: "Joined", Status: "True" });
        var before = await west.ObjectsAsync();

        var result = await Netctl.RunAsync(["--server", west.Address, "apply", "--dry-run=server", "-f", "-"], stdin: """
            apiVersion: controlplane/v1
            kind: Network
            metadata: {name: blue}
            spec: {vni: 200, ipv4_cidr: 10.20.128.0/24}
            ---
            apiVersion: controlplane/v1
            kind: Network
            metadata: {name: green}
            spec: {vni: 300, ipv4_cidr: 10.97.4.0/24}
            """);

        Assert.Equal(1, result.ExitCode);
        Assert.Equal(
        [
            "error: <stdin>: document 1 (Network blue) (line 4): spec.ipv4_cidr: 10.20.128.0/24 overlaps 10.20.0.0/16 of peer cluster 'east'",
            "error: <stdin>: document 2 (Network green) (line 9): spec.ipv4_cidr: 10.97.4.0/24 overlaps the service range 10.97.0.0/16",
        ], result.Errors.Where(e => e.StartsWith("error: <stdin>", StringComparison.Ordinal)));
        Assert.Equal(before, await west.ObjectsAsync());
        // The server refuses the same network, naming the same ranges.
        var refused = await Assert.ThrowsAsync<Grpc.Core.RpcException>(() => west.Client.Networks.CreateAsync(
            new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 200, Ipv4Cidr = "10.20.128.0/24" } }));
        Assert.Contains("10.20.0.0/16 of peer cluster 'east'", refused.Status.Detail);
    }

    [Fact]
    public async Task ClusterSetInfo_ShowsTheClusterIdSetAndServiceRanges()
    {
        await using var silo = await Silo.StartAsync(settings: ["--ClusterSet:ClusterId=west", "--ClusterSet:Name=prod"]);

        var text = await Netctl.RunAsync(silo, "clusterset", "info");
        Assert.True(text.ExitCode == 0, text.ToString());
        Assert.Equal(["Cluster:        west", "ClusterSet:     prod", "Service ranges: 10.96.0.0/16,fd00:96::/108"], text.OutputLines);

        var json = JsonNode.Parse((await Netctl.RunAsync(silo, "clusterset", "info", "-o", "json")).Output)!;
        Assert.Equal(("west", "prod"), ((string?)json["cluster_id"], (string?)json["cluster_set"]));
        Assert.Equal(["10.96.0.0/16", "fd00:96::/108"], json["service_ranges"]!.AsArray().Select(r => (string?)r));
    }

    private static string[] Words(string line) => line.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    /// <summary>Waits, on a watch, until the controller has set the export's two conditions.</summary>
    /// <summary>
    /// An object apply would leave as it is gets no write. The runner used to send it anyway,
    /// conditional on the etag the plan read, and the server refused it (ABORTED) when it had
    /// changed the object's status meanwhile: an export's conditions follow its service, which an
    /// earlier tier of the same apply may just have changed. Here the plan reads the export, its
    /// service goes, the export's status changes, then the plan runs.
    /// </summary>
    [Fact]
    public async Task Apply_AnUnchangedObjectWhoseStatusMovedSinceThePlan_IsNotWrittenAndNotRefused()
    {
        await using var silo = await Silo.StartAsync();
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        const string Export = "kind: ServiceExport\napiVersion: multicluster.x-k8s.io/v1alpha1\nmetadata: {name: web, namespace: shop}\n";
        Assert.Equal(0, (await Netctl.RunAsync(["--server", silo.Address, "apply", "-f", "-"], stdin: Export)).ExitCode);
        await WaitForExportConditionsAsync(silo);
        using var servers = new Connection.ServerSet([silo.Address], TimeSpan.FromSeconds(10));
        var read = Manifests.ManifestReader.Read(["-"], false, new StringReader(Export));
        var (plan, problems) = await new Apply.ApplyPlanner(servers, 4).PlanAsync(read.Documents, CancellationToken.None);
        Assert.Empty(problems);
        var planned = (await silo.Client.ServiceExports.GetAsync("shop", "web")).Metadata.Etag;

        await silo.Client.Services.DeleteAsync("shop", "web");
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in silo.Client.WatchAsync(new WatchRequest { Kinds = { Kind.ServiceExport }, Namespace = "shop" }, cancellationToken: cancel.Token))
        {
            if (e.ServiceExport is { } moved && moved.Metadata.Etag != planned) break; // the controller marked it: no service
        }
        var results = await new Apply.ApplyRunner(servers, 4).RunAsync(plan, CancellationToken.None);

        var result = Assert.Single(results);
        Assert.True(result.Outcome == Apply.ApplyRunner.Outcome.Unchanged, result.Error);
    }

    private static async Task WaitForExportConditionsAsync(Silo silo)
    {
        using var cancel = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await foreach (var e in silo.Client.WatchAsync(new WatchRequest { Kinds = { Kind.ServiceExport }, Namespace = "shop" }, cancellationToken: cancel.Token))
        {
            if (e.ServiceExport is { Status.Conditions.Count: 2 } && e.Type != EventType.Deleted) return;
        }
    }
}
