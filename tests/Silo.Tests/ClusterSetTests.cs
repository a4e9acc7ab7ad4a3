using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using Microsoft.AspNetCore.Hosting;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// Two control planes (silo processes) of one ClusterSet: peering, ServiceExport → ServiceImport
/// with a ClusterSetIP in every member, conflicts, overlap refusal, withdrawal after the grace
/// period and restoration when the peer returns.
/// </summary>
public sealed class ClusterSetTests : IAsyncLifetime
{
    private readonly List<string> _directories = [];
    private readonly List<SiloProcess> _silos = [];

    public Task InitializeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        foreach (var silo in _silos) await silo.DisposeAsync();
        foreach (var directory in _directories) if (Directory.Exists(directory)) Directory.Delete(directory, true);
    }

    private string NewDirectory()
    {
        var directory = Path.Combine(Path.GetTempPath(), "cp-clusterset-" + Guid.NewGuid().ToString("N"));
        _directories.Add(directory);
        return directory;
    }

    /// <summary>A member: cluster id, its own service range, a short grace period.</summary>
    private async Task<SiloProcess> StartMemberAsync(string id, string serviceRange, string directory, int port = 0, string set = "test-set")
    {
        var silo = await SiloProcess.StartAsync(directory, $"--ClusterSet:ClusterId={id}", $"--ClusterSet:Name={set}",
            $"--ControlPlane:ServiceIpv4Cidr={serviceRange}", "--ClusterSet:PeerGracePeriod=00:00:03", "--ClusterSet:PeerBookmarkSeconds=1",
            $"--Silo:Port={port}");
        _silos.Add(silo);
        return silo;
    }

    /// <summary>Namespace "shop", network "pods" (VNI 100) with the given range, node n1 and a ready endpoint labelled app=web.</summary>
    private static async Task<Endpoint> PopulateAsync(ControlPlaneClient client, string cidr, string endpoint = "web-1")
    {
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "shop" } });
        await client.Networks.CreateAsync(new Network { Metadata = new() { Name = "pods" }, Spec = new() { Vni = 100, Ipv4Cidr = cidr } });
        await client.Nodes.CreateAsync(new Node { Metadata = new() { Name = "n1" }, Spec = new() { UnderlayIp = "10.254.0.1" } });
        await client.HeartbeatAsync("n1");
        var e = new Endpoint { Metadata = new() { Name = endpoint, Namespace = "shop" }, Spec = new() { Network = "pods", Node = "n1", Ready = true } };
        e.Metadata.Labels["app"] = "web";
        return await client.Endpoints.CreateAsync(e);
    }

    private static Service Web(uint port = 80, ServiceType type = ServiceType.ClusterIp)
    {
        var service = new Service { Metadata = new() { Name = "web", Namespace = "shop" }, Spec = new() { Type = type, Network = "pods" } };
        service.Spec.Selector["app"] = "web";
        service.Spec.Ports.Add(new ServicePort { Name = "http", Port = port, TargetPortNumber = 8080 });
        return service;
    }

    private static ServiceExport Export() => new() { Metadata = new() { Name = "web", Namespace = "shop" } };

    private static ClusterPeer Peer(string id, SiloProcess silo) => new() { Metadata = new() { Name = id }, Spec = new() { Addresses = { silo.Address.ToString().TrimEnd('/') } } };

    private static WatchCollector WatchImports(SiloProcess silo) => new(silo.Client, new WatchRequest { Kinds = { Kind.ServiceImport, Kind.ServiceExport } });

    private static Func<WatchEvent, bool> ImportWhere(Func<ServiceImport, bool> predicate) =>
        e => e.ServiceImport is { } i && e.Type is EventType.Added or EventType.Modified && i.Metadata.Name == "web" && predicate(i);

    [Fact]
    public async Task ExportedService_IsImportedWithAClusterSetIpInEveryMember_AndWithdrawnWhenUnexported()
    {
        var a = await StartMemberAsync("a", "10.96.0.0/16", NewDirectory());
        var b = await StartMemberAsync("b", "10.97.0.0/16", NewDirectory());
        var endpoint = await PopulateAsync(a.Client, "10.10.0.0/16");
        await PopulateAsync(b.Client, "10.20.0.0/16", "other");
        await a.Client.Services.CreateAsync(Web());

        var joinedB = await b.Client.ClusterPeers.CreateAsync(Peer("a", a));
        Assert.Equal("True", joinedB.Status.Conditions.Single(c => c.Type == "Joined").Status);
        Assert.Contains("10.10.0.0/16", joinedB.Status.Ranges);
        Assert.Contains("10.96.0.0/16", joinedB.Status.Ranges);
        Assert.Contains(joinedB.Status.Nodes, n => n.Name == "n1" && n.UnderlayIp == "10.254.0.1" && n.VtepMac.Length > 0);
        Assert.Contains(joinedB.Status.Networks, n => n.Name == "pods" && n.Vni == 100 && n.Ipv4Cidr == "10.10.0.0/16" && n.Blocks.Count == 1);
        // a has no ClusterPeer for b yet: b's link says a does not count it as a member.
        var oneSided = await PeerJoinedAsync(b, "a", "False");
        Assert.Equal("NotAPeer", oneSided.Reason);
        Assert.Contains("cluster 'a' has no ClusterPeer for this cluster ('b')", oneSided.Message);
        await a.Client.ClusterPeers.CreateAsync(Peer("b", b));
        Assert.Equal("Joined", (await PeerJoinedAsync(b, "a", "True")).Reason);

        await using var importsB = WatchImports(b);
        await using var importsA = WatchImports(a);
        await a.Client.ServiceExports.CreateAsync(Export());

        var imported = (await importsB.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1 && i.Status.Clusters[0].Endpoints.Count == 1),
            "shop/web imported in b with a's endpoint", 20_000)).ServiceImport;
        Assert.Equal(ServiceImportType.ClusterSetIp, imported.Spec.Type);
        var ip = Assert.Single(imported.Spec.Ips);
        Assert.StartsWith("10.97.", ip);
        Assert.Equal("a", imported.Status.Clusters[0].Cluster);
        Assert.Equal(endpoint.Status.Ips, imported.Status.Clusters[0].Endpoints[0].Ips);
        Assert.Equal(80u, Assert.Single(imported.Spec.Ports).Port);
        Assert.Equal(8080u, imported.Status.Clusters[0].Ports[0].TargetPortNumber);

        // The exporting cluster imports it too, from its own range; its export is valid and without conflict.
        var own = (await importsA.WaitForAsync(ImportWhere(i => i.Spec.Ips.Count == 1), "shop/web imported in a", 20_000)).ServiceImport;
        Assert.StartsWith("10.96.", own.Spec.Ips[0]);
        Func<WatchEvent, bool> conditions = e => e.ServiceExport is { } x && x.Status?.Conditions.Count == 2;
        // (the export's conditions and the import are written together, in either order)
        var export = (importsA.Seen.LastOrDefault(conditions) ?? await importsA.WaitForAsync(conditions, "a's export conditions", 20_000)).ServiceExport;
        Assert.Equal("True", export.Status.Conditions.Single(c => c.Type == "Valid").Status);
        Assert.Equal("False", export.Status.Conditions.Single(c => c.Type == "Conflict").Status);

        // The peer's link is visible on Get.
        var peer = await b.Client.ClusterPeers.GetAsync("", "a");
        Assert.True(peer.Status.Connection.Connected, peer.Status.Connection.Message);
        Assert.Equal(1u, peer.Status.Connection.Exports);

        // The ClusterSetIP is held like a service VIP: a service asking for it is refused.
        var taken = Web();
        taken.Metadata.Name = "other";
        taken.Spec.ClusterIps.Add(ip);
        var refused = await Assert.ThrowsAsync<RpcException>(() => b.Client.Services.CreateAsync(taken));
        Assert.Equal(StatusCode.AlreadyExists, refused.StatusCode);
        Assert.Contains("ServiceImport shop/web", refused.Status.Detail);

        await a.Client.ServiceExports.DeleteAsync("shop", "web");
        await importsB.WaitForAsync(e => e.Type == EventType.Deleted && e.ServiceImport?.Metadata.Name == "web", "shop/web withdrawn in b", 20_000);
        await a.Client.ServiceExports.CreateAsync(Export());
        await importsB.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1), "shop/web exported again, imported in b", 20_000);

        // a drops b: b still sees a as joined and connected, and says a no longer counts it. a's
        // nodes no longer route to b's networks, so b withdraws a's part of its imports at once
        // (its workloads' connections to a's endpoints could get no answer), until a peers again.
        await a.Client.ClusterPeers.DeleteAsync("", "b");
        await importsB.WaitForAsync(e => e.Type == EventType.Deleted && e.ServiceImport?.Metadata.Name == "web", "a's part withdrawn in b once a dropped b", 20_000);
        Assert.Equal("NotAPeer", (await PeerJoinedAsync(b, "a", "False")).Reason);
        var dropped = await b.Client.ClusterPeers.GetAsync("", "a");
        Assert.True(dropped.Status.Connection.Connected, dropped.Status.Connection.Message);
        Assert.Equal("True", dropped.Status.Conditions.Single(c => c.Type == "Joined").Status);
        Assert.Equal(1u, dropped.Status.Connection.Exports);
        await a.Client.ClusterPeers.CreateAsync(Peer("b", b));
        await importsB.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1 && i.Status.Clusters[0].Cluster == "a"), "shop/web imported in b again once a peered again", 20_000);
    }

    /// <summary>
    /// The peer's view of this cluster as <paramref name="silo"/>'s link to <paramref name="peer"/>
    /// shows it (computed on each Get, so asked again until it has <paramref name="status"/>).
    /// </summary>
    private static async Task<Condition> PeerJoinedAsync(SiloProcess silo, string peer, string status)
    {
        var clock = System.Diagnostics.Stopwatch.StartNew();
        while (true)
        {
            var seen = (await silo.Client.ClusterPeers.GetAsync("", peer)).Status.Connection.PeerJoined;
            if (seen?.Status == status) return seen;
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"{peer}'s view of this cluster is {seen}, not {status}");
            await Task.Delay(100);
        }
    }

    [Fact]
    public async Task BothClustersExporting_ImportHoldsBoth_AndTheYoungerConflictingExportIsReported()
    {
        var a = await StartMemberAsync("a", "10.96.0.0/16", NewDirectory());
        var b = await StartMemberAsync("b", "10.97.0.0/16", NewDirectory());
        await PopulateAsync(a.Client, "10.10.0.0/16");
        await PopulateAsync(b.Client, "10.20.0.0/16");
        await a.Client.Services.CreateAsync(Web(80));
        await b.Client.Services.CreateAsync(Web(81));
        await a.Client.ClusterPeers.CreateAsync(Peer("b", b));
        await b.Client.ClusterPeers.CreateAsync(Peer("a", a));
        await using var watchA = WatchImports(a);
        await using var watchB = WatchImports(b);
        await a.Client.ServiceExports.CreateAsync(Export());
        await watchB.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1), "a's export imported in b", 20_000);
        await b.Client.ServiceExports.CreateAsync(Export());

        var both = (await watchA.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 2), "both clusters in a's import", 20_000)).ServiceImport;
        Assert.Equal(["a", "b"], both.Status.Clusters.Select(c => c.Cluster));
        Assert.Equal(80u, both.Spec.Ports.Single().Port); // the oldest export's
        var conflict = (await watchB.WaitForAsync(e => e.ServiceExport?.Status?.Conditions.Any(c => c.Type == "Conflict" && c.Status == "True") == true,
            "b's export in conflict", 20_000)).ServiceExport;
        var condition = conflict.Status.Conditions.Single(c => c.Type == "Conflict");
        Assert.Equal("PortConflict", condition.Reason);
        Assert.Contains("'a'", condition.Message);
    }

    [Fact]
    public async Task OverlappingRanges_RefuseTheJoin_NamingBothRanges_AndAJoinedPeersRangesAreHeld()
    {
        var a = await StartMemberAsync("a", "10.96.0.0/16", NewDirectory());
        var b = await StartMemberAsync("b", "10.97.0.0/16", NewDirectory());
        await PopulateAsync(a.Client, "10.10.0.0/16");
        await PopulateAsync(b.Client, "10.10.4.0/24");

        var refused = await Assert.ThrowsAsync<RpcException>(() => b.Client.ClusterPeers.CreateAsync(Peer("a", a)));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("10.10.0.0/16", refused.Status.Detail);
        Assert.Contains("10.10.4.0/24", refused.Status.Detail);
        Assert.Empty((await b.Client.ClusterPeers.ListAsync(new ListRequest())).ClusterPeers);

        // A peer using this cluster's service range is refused the same way.
        var c = await StartMemberAsync("c", "10.97.128.0/20", NewDirectory());
        var service = await Assert.ThrowsAsync<RpcException>(() => b.Client.ClusterPeers.CreateAsync(Peer("c", c)));
        Assert.Equal(StatusCode.FailedPrecondition, service.StatusCode);
        Assert.Contains("10.97.128.0/20", service.Status.Detail);
        Assert.Contains("10.97.0.0/16", service.Status.Detail);

        // Joined, a peer's ranges are held here: a local network overlapping one is refused.
        await a.Client.ClusterPeers.CreateAsync(Peer("c", c));
        var network = await Assert.ThrowsAsync<RpcException>(() => a.Client.Networks.CreateAsync(
            new Network { Metadata = new() { Name = "more" }, Spec = new() { Vni = 7, Ipv4Cidr = "10.97.130.0/24" } }));
        Assert.Equal(StatusCode.FailedPrecondition, network.StatusCode);
        Assert.Contains("10.97.128.0/20", network.Status.Detail);

        // A peer of another ClusterSet, or one that is not the cluster it names, is refused.
        var d = await StartMemberAsync("d", "10.98.0.0/16", NewDirectory(), set: "other-set");
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => a.Client.ClusterPeers.CreateAsync(Peer("d", d)))).StatusCode);
        var wrong = Peer("e", c);
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => a.Client.ClusterPeers.CreateAsync(wrong))).StatusCode);
        Assert.Equal(StatusCode.InvalidArgument, (await Assert.ThrowsAsync<RpcException>(() => a.Client.ClusterPeers.CreateAsync(Peer("a", c)))).StatusCode);
    }

    /// <summary>
    /// A joined peer whose new network overlaps one of this cluster's is refused (Overlap); once
    /// this cluster's network goes, it is judged again and joins, though nothing of the peer changed.
    /// </summary>
    [Fact]
    public async Task PeerRefusedForAnOverlap_JoinsOnceThisClustersOverlappingNetworkIsDeleted()
    {
        var a = await StartMemberAsync("a", "10.96.0.0/16", NewDirectory());
        var b = await StartMemberAsync("b", "10.97.0.0/16", NewDirectory());
        await PopulateAsync(a.Client, "10.10.0.0/16");
        await PopulateAsync(b.Client, "10.20.0.0/16");
        await b.Client.Networks.CreateAsync(new Network { Metadata = new() { Name = "extra" }, Spec = new() { Vni = 7, Ipv4Cidr = "10.40.0.0/24" } });
        await using var peers = new WatchCollector(b.Client, new WatchRequest { Kinds = { Kind.ClusterPeer } });
        await b.Client.ClusterPeers.CreateAsync(Peer("a", a));
        // a does not peer with b, so nothing there refuses a network in b's range.
        await a.Client.Networks.CreateAsync(new Network { Metadata = new() { Name = "wide" }, Spec = new() { Vni = 8, Ipv4Cidr = "10.40.0.0/16" } });
        var overlap = await peers.WaitForAsync(e => Joined(e) is { Status: "False", Reason: "Overlap" }, "b refuses a for the overlap", 20_000);
        Assert.Contains("10.40.0.0/24", Joined(overlap)!.Message);

        await b.Client.Networks.DeleteAsync("", "extra");

        await peers.WaitForAsync(e => Joined(e) is { Status: "True" }, "a joins once b's overlapping network is gone", 20_000);
        Assert.Contains("10.40.0.0/16", (await b.Client.ClusterPeers.GetAsync("", "a")).Status.Ranges);
    }

    private static Condition? Joined(WatchEvent e) => e.ClusterPeer?.Status?.Conditions.FirstOrDefault(c => c.Type == "Joined");

    /// <summary>
    /// A peer is read through whichever of its addresses answers, so every address must lead to
    /// it: one that answers as another cluster is refused on create and on update. One that
    /// comes to answer as another cluster later (nothing listened there when it was written):
    /// when the real one goes and the watch moves on to the other, that cluster's identity is
    /// checked at once (not at the next half-minute refresh), and the peer is not joined to it.
    /// </summary>
    [Fact]
    public async Task PeerAddressesLeadingToAnotherCluster_AreRefused_OrNoticedWhenTheWatchMovesThere()
    {
        var a = await StartMemberAsync("a", "10.96.0.0/16", NewDirectory());
        var c = await StartMemberAsync("c", "10.99.0.0/16", NewDirectory());
        var b = await StartMemberAsync("b", "10.97.0.0/16", NewDirectory());
        var spare = $"http://127.0.0.1:{ControlPlane.Tests.Shared.Ports.Free()}";
        await PopulateAsync(a.Client, "10.10.0.0/16");
        await PopulateAsync(b.Client, "10.20.0.0/16");
        await a.Client.Services.CreateAsync(Web());
        await a.Client.ServiceExports.CreateAsync(Export());
        await using var watchB = WatchImports(b);
        var mixed = Peer("a", a);
        mixed.Spec.Addresses.Add(c.Address.ToString().TrimEnd('/'));
        var refused = await Assert.ThrowsAsync<RpcException>(() => b.Client.ClusterPeers.CreateAsync(mixed));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains($"cluster 'a' cannot join: spec.addresses[1] ('{mixed.Spec.Addresses[1]}') answers as cluster 'c' of ClusterSet 'test-set'", refused.Status.Detail);
        Assert.Empty((await b.Client.ClusterPeers.ListAsync(new ListRequest())).ClusterPeers);
        // Another cluster given the same id by mistake: its own store gives it away.
        var twin = await StartMemberAsync("a", "10.95.0.0/16", NewDirectory());
        var twins = Peer("a", a);
        twins.Spec.Addresses.Add(twin.Address.ToString().TrimEnd('/'));
        refused = await Assert.ThrowsAsync<RpcException>(() => b.Client.ClusterPeers.CreateAsync(twins));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains($"cluster 'a' cannot join: spec.addresses[1] ('{twins.Spec.Addresses[1]}') and spec.addresses[0] ('{twins.Spec.Addresses[0]}') answer as cluster 'a' from two stores", refused.Status.Detail);
        Assert.Empty((await b.Client.ClusterPeers.ListAsync(new ListRequest())).ClusterPeers);
        twin.Kill();
        var peer = await b.Client.ClusterPeers.CreateAsync(Peer("a", a));
        await a.Client.ClusterPeers.CreateAsync(Peer("b", b)); // imports come from peers joined both ways
        var updated = peer.Clone();
        updated.Spec.Addresses.Add(c.Address.ToString().TrimEnd('/'));
        Assert.Equal(StatusCode.FailedPrecondition, (await Assert.ThrowsAsync<RpcException>(() => b.Client.ClusterPeers.UpdateAsync(updated))).StatusCode);
        Assert.Equal(peer.Metadata.Etag, (await b.Client.ClusterPeers.GetAsync("", "a")).Metadata.Etag);
        // An address where nothing answers yet passes.
        updated = peer.Clone();
        updated.Spec.Addresses.Add(spare);
        await b.Client.ClusterPeers.UpdateAsync(updated);
        var impostor = await StartMemberAsync("z", "10.98.0.0/16", NewDirectory(), port: new Uri(spare).Port);
        await PopulateAsync(impostor.Client, "10.30.0.0/16");
        await watchB.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1), "a's export imported in b", 20_000);
        await using var peers = new WatchCollector(b.Client, new WatchRequest { Kinds = { Kind.ClusterPeer } });

        a.Kill();

        var wrong = await peers.WaitForAsync(e => e.ClusterPeer?.Status.Conditions.Any(c => c.Type == "Joined" && c.Status == "False" && c.Reason == "WrongCluster") == true,
            "the peer is no longer joined once its watch reached the other cluster", 15_000);
        Assert.Contains("are cluster 'z', not 'a'", wrong.ClusterPeer.Status.Conditions.Single(c => c.Type == "Joined").Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task LostPeer_ImportsWithdrawnAfterTheGracePeriod_AndRestoredWhenItReturns()
    {
        var directoryA = NewDirectory();
        var portA = Ports.Free();
        var a = await StartMemberAsync("a", "10.96.0.0/16", directoryA, portA);
        var b = await StartMemberAsync("b", "10.97.0.0/16", NewDirectory());
        await PopulateAsync(a.Client, "10.10.0.0/16");
        await PopulateAsync(b.Client, "10.20.0.0/16");
        await a.Client.Services.CreateAsync(Web());
        await a.Client.ServiceExports.CreateAsync(Export());
        await using var watchB = WatchImports(b);
        await b.Client.ClusterPeers.CreateAsync(Peer("a", a));
        await a.Client.ClusterPeers.CreateAsync(Peer("b", b)); // imports come from peers joined both ways
        var imported = (await watchB.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1), "a's export imported in b", 20_000)).ServiceImport;
        var localService = Web();
        localService.Metadata.Name = "local";
        var local = await b.Client.Services.CreateAsync(localService);

        // The clock starts before the kill: Kill() returns only once the process's output has
        // drained, which under load is seconds after b saw the peer go.
        var started = DateTime.UtcNow;
        a.Kill();
        await watchB.WaitForAsync(e => e.Type == EventType.Deleted && e.ServiceImport?.Metadata.Name == "web", "a's import withdrawn", 30_000);
        Assert.True(DateTime.UtcNow - started >= TimeSpan.FromSeconds(2.5), $"withdrawn after {DateTime.UtcNow - started}, before the 3 s grace period");
        var peer = await b.Client.ClusterPeers.GetAsync("", "a");
        Assert.False(peer.Status.Connection.Connected);
        // Withdrawn, the peer's status claims nothing this silo no longer uses: its nodes are not
        // ready and none of its exports is counted; its ranges are still held for its return.
        Assert.True(peer.Status.Connection.WithdrawTime.ToDateTime() <= DateTime.UtcNow);
        Assert.Equal(0u, peer.Status.Connection.Exports);
        Assert.Contains("withdrawn", peer.Status.Connection.Message);
        Assert.Contains(peer.Status.Nodes, n => n.Name == "n1");
        Assert.All(peer.Status.Nodes, n => Assert.False(n.Ready));
        Assert.Contains("10.10.0.0/16", peer.Status.Ranges);
        // Local state is untouched.
        Assert.Equal(local.Status.ClusterIps, (await b.Client.Services.GetAsync("shop", "local")).Status.ClusterIps);

        _silos.Remove(a);
        await a.DisposeAsync();
        a = await StartMemberAsync("a", "10.96.0.0/16", directoryA, portA);
        var restored = (await watchB.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1), "a's import restored", 30_000)).ServiceImport;
        Assert.Equal(imported.Status.Clusters[0].Endpoints, restored.Status.Clusters[0].Endpoints);
        Assert.Equal(imported.Spec.Ips, restored.Spec.Ips); // the name keeps its address
        var back = await b.Client.ClusterPeers.GetAsync("", "a");
        Assert.True(back.Status.Connection.Connected, back.Status.Connection.Message);
        Assert.Equal(1u, back.Status.Connection.Exports);
    }

    [Fact]
    public async Task DeletedPeer_ItsImportsGoAtOnce_AndItsRangesAreFreed_AcrossARestart()
    {
        var directoryB = NewDirectory();
        var portB = Ports.Free();
        var a = await StartMemberAsync("a", "10.96.0.0/16", NewDirectory());
        var b = await StartMemberAsync("b", "10.97.0.0/16", directoryB, portB);
        await PopulateAsync(a.Client, "10.10.0.0/16");
        await b.Client.Namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "shop" } });
        await a.Client.Services.CreateAsync(Web());
        await a.Client.ServiceExports.CreateAsync(Export());
        await b.Client.ClusterPeers.CreateAsync(Peer("a", a));
        await a.Client.ClusterPeers.CreateAsync(Peer("b", b)); // imports come from peers joined both ways
        await using (var watch = WatchImports(b))
        {
            await watch.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1), "a's export imported in b", 20_000);
        }

        // The peer's ranges stay held across a restart of b (they are claims in b's store).
        await b.TerminateAsync();
        _silos.Remove(b);
        await b.DisposeAsync();
        b = await StartMemberAsync("b", "10.97.0.0/16", directoryB, portB);
        var held = await Assert.ThrowsAsync<RpcException>(() => b.Client.Networks.CreateAsync(
            new Network { Metadata = new() { Name = "pods" }, Spec = new() { Vni = 100, Ipv4Cidr = "10.10.0.0/24" } }));
        Assert.Equal(StatusCode.FailedPrecondition, held.StatusCode);
        Assert.Contains("peer cluster 'a'", held.Status.Detail);

        await using var imports = WatchImports(b);
        await imports.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1), "the import still there after b's restart", 20_000);
        await b.Client.ClusterPeers.DeleteAsync("", "a");
        await imports.WaitForAsync(e => e.Type == EventType.Deleted && e.ServiceImport?.Metadata.Name == "web", "the import withdrawn with its peer", 10_000);
        await b.Client.Networks.CreateAsync(new Network { Metadata = new() { Name = "pods" }, Spec = new() { Vni = 100, Ipv4Cidr = "10.10.0.0/24" } });
    }

    /// <summary>An empty web server on a loopback port speaking <paramref name="protocols"/>, and its address.</summary>
    private static async Task<(Microsoft.AspNetCore.Builder.WebApplication Server, string Address)> WebServerAsync(Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols protocols)
    {
        var builder = Microsoft.AspNetCore.Builder.WebApplication.CreateSlimBuilder();
        builder.WebHost.ConfigureKestrel(k => k.Listen(System.Net.IPAddress.Loopback, 0, o => o.Protocols = protocols));
        var server = builder.Build();
        await server.StartAsync();
        var address = ((Microsoft.AspNetCore.Hosting.Server.IServer)server.Services.GetService(typeof(Microsoft.AspNetCore.Hosting.Server.IServer))!)
            .Features.Get<Microsoft.AspNetCore.Hosting.Server.Features.IServerAddressesFeature>()!.Addresses.First();
        return (server, address);
    }

    [Fact]
    public async Task PeerAddresses_AreCheckedOnCreateAndUpdate_AndAServerThatIsNoControlPlaneLeavesThePeerUnjoined()
    {
        var a = await StartMemberAsync("a", "10.96.0.0/16", NewDirectory());
        var b = await StartMemberAsync("b", "10.97.0.0/16", NewDirectory());
        var c = await StartMemberAsync("c", "10.98.0.0/16", NewDirectory());

        // An HTTP/2 server that is not a control plane (it answers 404): stored, not joined, with the reason.
        var (other, otherAddress) = await WebServerAsync(Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http2);
        await using var stopOther = other;
        var stranger = await a.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "x" }, Spec = new() { Addresses = { otherAddress } } });
        var joined = stranger.Status.Conditions.Single(c => c.Type == "Joined");
        Assert.Equal("Unknown", joined.Status);
        Assert.Contains("Unimplemented", joined.Message);
        var link = (await a.Client.ClusterPeers.GetAsync("", "x")).Status.Connection;
        Assert.False(link.Connected);
        Assert.Null(link.WithdrawTime);
        // A server that speaks no HTTP/2: the reason is this silo's own diagnosis, kept whole.
        var (old, oldAddress) = await WebServerAsync(Microsoft.AspNetCore.Server.Kestrel.Core.HttpProtocols.Http1);
        await using var stopOld = old;
        var unspoken = (await a.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "old" }, Spec = new() { Addresses = { oldAddress } } }))
            .Status.Conditions.Single(c => c.Type == "Joined").Message;
        Assert.Contains("HTTP/2", unspoken);
        Assert.DoesNotContain("characters)", unspoken);
        await a.Client.ClusterPeers.DeleteAsync("", "old");

        // An update to addresses of another cluster is refused like a create, and changes nothing.
        var peer = await a.Client.ClusterPeers.CreateAsync(Peer("b", b));
        var moved = peer.Clone();
        moved.Spec.Addresses[0] = c.Address.ToString().TrimEnd('/');
        var refused = await Assert.ThrowsAsync<RpcException>(() => a.Client.ClusterPeers.UpdateAsync(moved));
        Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
        Assert.Contains("'c', not 'b'", refused.Status.Detail);
        Assert.Equal(peer.Metadata.Etag, (await a.Client.ClusterPeers.GetAsync("", "b")).Metadata.Etag);

        // Addresses: one per item, each once, nothing but scheme, host and port.
        foreach (var (addresses, field) in new[]
        {
            (new[] { "http://127.0.0.1:1", "http://127.0.0.1:1" }, "spec.addresses[1]"),
            (new[] { "http://127.0.0.1:1/path" }, "spec.addresses[0]"),
            (new[] { "http://user@127.0.0.1:1" }, "spec.addresses[0]"),
            (new[] { "http://127.0.0.1:1,http://127.0.0.1:2" }, "spec.addresses[0]"),
            (Enumerable.Range(1, 17).Select(i => $"http://127.0.0.1:{i}").ToArray(), "spec.addresses"),
        })
        {
            var bad = new ClusterPeer { Metadata = new() { Name = "y" }, Spec = new() { Addresses = { addresses } } };
            var invalid = await Assert.ThrowsAsync<RpcException>(() => a.Client.ClusterPeers.CreateAsync(bad));
            Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
            Assert.StartsWith(field + ":", invalid.Status.Detail);
        }
        // Addresses no silo can dial are refused, not stored to stay unjoined: each names its reason.
        foreach (var (address, reason) in new[]
        {
            ("unix:", "names no socket path"),
            ("unix:relative/path", "has a relative socket path"),
            ("http://127.0.0.1:0", "has port 0"),
            ("http://127.0.0.1", "names no port"),
            ("https://[::1]", "names no port"),
        })
        {
            var bad = new ClusterPeer { Metadata = new() { Name = "y" }, Spec = new() { Addresses = { "http://127.0.0.1:1", address } } };
            var invalid = await Assert.ThrowsAsync<RpcException>(() => a.Client.ClusterPeers.CreateAsync(bad));
            Assert.Equal(StatusCode.InvalidArgument, invalid.StatusCode);
            Assert.StartsWith($"spec.addresses[1]: '{address}' {reason}", invalid.Status.Detail);
        }
        Assert.Equal(["b", "x"], (await a.Client.ClusterPeers.ListAsync(new ListRequest())).ClusterPeers.Select(p => p.Metadata.Name));
    }

    [Fact]
    public async Task PeersOverMutualTls_JoinWithAReaderCertificate_AndImport()
    {
        using var pki = ControlPlane.Tests.Shared.ClusterPki.Create();
        pki.Client("cluster-b", "reader"); // b's certificate for its peers: reading is all a peer does
        pki.Client("cluster-a", "reader"); // and a's: imports come from peers joined both ways
        // Each member reads its peers with its own certificate.
        string[] Member(string id, string range) => [$"--ClusterSet:ClusterId={id}", "--ClusterSet:Name=test-set", $"--ControlPlane:ServiceIpv4Cidr={range}",
            $"--ClusterSet:Ca={pki.CaPath}", $"--ClusterSet:Certificate={pki.CertificatePath($"cluster-{id}")}", $"--ClusterSet:Key={pki.KeyPath($"cluster-{id}")}"];
        var a = await SiloProcess.StartAsync(NewDirectory(), pki, Member("a", "10.96.0.0/16"));
        _silos.Add(a);
        var b = await SiloProcess.StartAsync(NewDirectory(), pki, Member("b", "10.97.0.0/16"));
        _silos.Add(b);
        Assert.StartsWith("https://", a.Address.ToString());
        await PopulateAsync(a.Client, "10.10.0.0/16");
        await b.Client.Namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "shop" } });
        await a.Client.Services.CreateAsync(Web());
        await a.Client.ServiceExports.CreateAsync(Export());

        var peer = await b.Client.ClusterPeers.CreateAsync(Peer("a", a));
        Assert.Equal("True", peer.Status.Conditions.Single(c => c.Type == "Joined").Status);
        Assert.Equal("True", (await a.Client.ClusterPeers.CreateAsync(Peer("b", b))).Status.Conditions.Single(c => c.Type == "Joined").Status);
        await using var imports = WatchImports(b);
        await imports.WaitForAsync(ImportWhere(i => i.Status.Clusters.Count == 1 && i.Status.Clusters[0].Endpoints.Count == 1), "a's export imported over TLS", 20_000);
    }
}
