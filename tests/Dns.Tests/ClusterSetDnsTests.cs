using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Feed;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// The ClusterSet zone end to end: services exported through the API, the ServiceImports the silo
/// derives (a cluster imports its own exports too, and a peer's), answers read with dig and kdig.
/// </summary>
public sealed class ClusterSetDnsTests
{
    private const string SoaStart = "clusterset.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. ";

    private static readonly string[] East = ["--ClusterSet:ClusterId=east", "--ClusterSet:Name=mesh"];

    private static Endpoint Pod(string name, string network = "blue", string node = "node-a", bool ready = true, string hostname = "", uint port = 5432) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "shop", Labels = { ["app"] = "db" } },
        Spec = new EndpointSpec
        {
            Network = network, Node = node, Ready = ready, Hostname = hostname, Subdomain = hostname.Length > 0 ? "db" : "",
            Ports = { new NamedPort { Name = "pg", Port = port } },
        },
    };

    private static Service Headless(string network = "blue", ServicePort? port = null, params string[] families) => new()
    {
        Metadata = new ObjectMeta { Name = "db", Namespace = "shop" },
        Spec = new ServiceSpec
        {
            Type = ServiceType.Headless, Network = network, Selector = { ["app"] = "db" },
            Ports = { port ?? new ServicePort { Name = "postgres", Port = 5432, TargetPortName = "pg" } },
            IpFamilies = { families }, IpFamilyPolicy = families.Length > 1 ? "RequireDualStack" : "",
        },
    };

    private static ServiceExport Export(string name) => new() { Metadata = new ObjectMeta { Name = name, Namespace = "shop" } };

    [Fact]
    public async Task ClusterSetIpImport_AnswersItsClusterSetIpsSrvAndPtr_WithTheZonesNegatives_AndGoesWhenUnexported()
    {
        await using var dns = await ClusterDns.StartWithSiloAsync(East);
        var web = await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec
            {
                Network = "blue", Selector = { ["app"] = "web" }, IpFamilyPolicy = "RequireDualStack",
                Ports = { new ServicePort { Name = "http", Port = 80 } },
            },
        });
        await dns.Client.ServiceExports.CreateAsync(Export("web"));
        await dns.AwaitAnswerAsync("web.shop.svc.clusterset.local", DnsType.AAAA, r => r.Answer.Count == 1, 20_000);
        var import = await dns.Client.ServiceImports.GetAsync("shop", "web");
        Assert.Equal(ServiceImportType.ClusterSetIp, import.Spec.Type);
        var v4 = Assert.Single(import.Spec.Ips, ip => !ip.Contains(':'));
        var v6 = Assert.Single(import.Spec.Ips, ip => ip.Contains(':'));
        Assert.Empty(import.Spec.Ips.Intersect(web.Status.ClusterIps)); // ClusterSetIPs are addresses of their own

        var a = await dns.AskAsync("dig", "+norec", "web.shop.svc.clusterset.local", "A");
        Assert.Equal("NOERROR", a.Status);
        Assert.True(a.Authoritative);
        Assert.Equal([$"web.shop.svc.clusterset.local. 30 IN A {v4}"], a.Answer);
        Assert.Empty(a.Authority);
        var aaaa = await dns.AskAsync("kdig", "web.shop.svc.clusterset.local", "AAAA");
        Assert.True(aaaa.Authoritative);
        Assert.Equal([$"web.shop.svc.clusterset.local. 30 IN AAAA {v6}"], aaaa.Answer);
        // SRV for the named port, to the service name.
        var srv = await dns.AskAsync("dig", "_http._tcp.web.shop.svc.clusterset.local", "SRV");
        Assert.Equal(["_http._tcp.web.shop.svc.clusterset.local. 30 IN SRV 0 100 80 web.shop.svc.clusterset.local."], srv.Answer);
        // PTR: the ClusterSetIPs name the import; the ClusterIPs keep the service's cluster name.
        Assert.Equal("web.shop.svc.clusterset.local.", (await dns.DigAsync("dig", "+short", "-x", v4)).Trim());
        Assert.Equal("web.shop.svc.clusterset.local.", (await dns.DigAsync("kdig", "+short", "-x", v6)).Trim());
        Assert.Equal("web.shop.svc.cluster.local.", (await dns.DigAsync("dig", "+short", "-x", web.Status.ClusterIps[0])).Trim());
        // The cluster zone is unchanged.
        Assert.Equal([$"web.shop.svc.cluster.local. 30 IN A {web.Status.ClusterIps[0]}"], (await dns.AskAsync("dig", "web.shop.svc.cluster.local", "A")).Answer);

        // The apex and the schema version.
        Assert.Equal("\"1.0.0\"", (await dns.DigAsync("dig", "+short", "dns-version.clusterset.local", "TXT")).Trim());
        Assert.Equal("ns.dns.cluster.local.", (await dns.DigAsync("dig", "+short", "clusterset.local", "NS")).Trim());
        var soa = Assert.Single((await dns.AskAsync("kdig", "clusterset.local", "SOA")).Answer);
        Assert.StartsWith("clusterset.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. ", soa);

        // Negatives: NODATA for a name without the type and for empty non-terminals, NXDOMAIN for
        // names that do not exist (no name singles out a cluster), each with the zone's SOA.
        await AssertNegative(dns, "dig", "web.shop.svc.clusterset.local", "TXT", "NOERROR");
        await AssertNegative(dns, "kdig", "shop.svc.clusterset.local", "A", "NOERROR");
        await AssertNegative(dns, "dig", "svc.clusterset.local", "AAAA", "NOERROR");
        await AssertNegative(dns, "dig", "_tcp.web.shop.svc.clusterset.local", "SRV", "NOERROR");
        await AssertNegative(dns, "dig", "east.web.shop.svc.clusterset.local", "A", "NXDOMAIN");
        await AssertNegative(dns, "kdig", "_http._udp.web.shop.svc.clusterset.local", "SRV", "NXDOMAIN");
        await AssertNegative(dns, "dig", "other.shop.svc.clusterset.local", "A", "NXDOMAIN");
        await AssertNegative(dns, "dig", "10-244-0-2.shop.pod.clusterset.local", "A", "NXDOMAIN");

        await dns.Client.ServiceExports.DeleteAsync("shop", "web");
        await dns.AwaitAnswerAsync("web.shop.svc.clusterset.local", DnsType.A, r => r.Rcode == (int)Rcode.NXDomain, 20_000);
        await AssertNegative(dns, "dig", "web.shop.svc.clusterset.local", "A", "NXDOMAIN");
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("dig", "-x", v4)).Status); // released: in our service range, no one's
        Assert.Equal([$"web.shop.svc.cluster.local. 30 IN A {web.Status.ClusterIps[0]}"], (await dns.AskAsync("dig", "web.shop.svc.cluster.local", "A")).Answer);
    }

    [Fact]
    public async Task HeadlessImport_AnswersEveryEndpoint_ClusterQualifiedHostnames_AndSrvPerEndpoint()
    {
        await using var dns = await ClusterDns.StartWithSiloAsync(East);
        var db0 = await dns.Client.Endpoints.CreateAsync(Pod("db-0", hostname: "db-0"));
        var db1 = await dns.Client.Endpoints.CreateAsync(Pod("db-1", port: 6543));
        var db2 = await dns.Client.Endpoints.CreateAsync(Pod("db-2", ready: false));
        await dns.Client.Services.CreateAsync(Headless(families: ["IPv4", "IPv6"]));
        await dns.Client.ServiceExports.CreateAsync(Export("db"));
        await dns.AwaitAnswerAsync("db.shop.svc.clusterset.local", DnsType.AAAA, r => r.Answer.Count == 2, 20_000);
        var derived = db1.Status.Ips[0].Replace('.', '-');

        // Every ready endpoint's addresses, of both families.
        var a = await dns.AskAsync("dig", "db.shop.svc.clusterset.local", "A");
        Assert.True(a.Authoritative);
        Assert.Equal(new[] { db0, db1 }.Select(e => $"db.shop.svc.clusterset.local. 30 IN A {e.Status.Ips[0]}").Order(), a.Answer.Order());
        var aaaa = await dns.AskAsync("kdig", "db.shop.svc.clusterset.local", "AAAA");
        Assert.Equal(new[] { db0, db1 }.Select(e => $"db.shop.svc.clusterset.local. 30 IN AAAA {e.Status.Ips[1]}").Order(), aaaa.Answer.Order());
        // <hostname>.<clusterid>.<svc>.<ns>.svc.clusterset.local, the hostname derived when unset.
        Assert.Equal([$"db-0.east.db.shop.svc.clusterset.local. 30 IN A {db0.Status.Ips[0]}"], (await dns.AskAsync("dig", "db-0.east.db.shop.svc.clusterset.local", "A")).Answer);
        Assert.Equal([$"db-0.east.db.shop.svc.clusterset.local. 30 IN AAAA {db0.Status.Ips[1]}"], (await dns.AskAsync("kdig", "db-0.east.db.shop.svc.clusterset.local", "AAAA")).Answer);
        Assert.Equal([$"{derived}.east.db.shop.svc.clusterset.local. 30 IN AAAA {db1.Status.Ips[1]}"], (await dns.AskAsync("dig", $"{derived}.east.db.shop.svc.clusterset.local", "AAAA")).Answer);
        // SRV: one per endpoint, each with the port its named target port has there.
        var srv = await dns.AskAsync("kdig", "_postgres._tcp.db.shop.svc.clusterset.local", "SRV");
        Assert.Equal(new[]
        {
            "_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 5432 db-0.east.db.shop.svc.clusterset.local.",
            $"_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 6543 {derived}.east.db.shop.svc.clusterset.local.",
        }.Order(), srv.Answer.Order());
        // <clusterid>.<svc> is no record (NODATA); the hostname without the cluster is no name.
        await AssertNegative(dns, "dig", "east.db.shop.svc.clusterset.local", "A", "NOERROR");
        await AssertNegative(dns, "dig", "db-0.db.shop.svc.clusterset.local", "A", "NXDOMAIN");
        await AssertNegative(dns, "kdig", "db-0.west.db.shop.svc.clusterset.local", "A", "NXDOMAIN");
        // An endpoint keeps its cluster zone PTR.
        Assert.Equal("db-0.db.shop.svc.cluster.local.", (await dns.DigAsync("dig", "+short", "-x", db0.Status.Ips[0])).Trim());

        // Readiness follows through the import.
        db2.Spec.Ready = true;
        await dns.Client.Endpoints.UpdateAsync(db2);
        await dns.AwaitAnswerAsync("db.shop.svc.clusterset.local", DnsType.A, r => r.Answer.Count == 3, 20_000);
        Assert.Equal([db2.Status.Ips[0]], await Short(dns, $"{db2.Status.Ips[0].Replace('.', '-')}.east.db.shop.svc.clusterset.local", "A"));
    }

    [Fact]
    public async Task PeeredClusters_ImportsHoldBothClustersEndpoints_NamedByClusterId_AndFollowThePeersExports()
    {
        await using var east = await ClusterDns.StartWithSiloAsync(East);
        await using var west = await SocketSilo.StartAsync("--ClusterSet:ClusterId=west", "--ClusterSet:Name=mesh", "--ControlPlane:ServiceIpv4Cidr=10.97.0.0/16");
        using var westClient = west.Connect();
        await westClient.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await westClient.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = "node-w" }, Spec = new NodeSpec { UnderlayIp = "10.255.0.2" } });
        await westClient.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "pods" }, Spec = new NetworkSpec { Vni = 20, Ipv4Cidr = "10.20.0.0/16" } });
        var westDb = await westClient.Endpoints.CreateAsync(Pod("db-0", "pods", "node-w", hostname: "db-0"));
        // West's own service port reaches its endpoints on 7000.
        await westClient.Services.CreateAsync(Headless("pods", new ServicePort { Name = "postgres", Port = 5432, TargetPortNumber = 7000 }));
        await westClient.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "api", Namespace = "shop" }, Spec = new ServiceSpec { Network = "pods", Ports = { new ServicePort { Name = "grpc", Port = 50051 } } } });
        await westClient.ServiceExports.CreateAsync(Export("db"));
        await westClient.ServiceExports.CreateAsync(Export("api"));

        var eastDb = await east.Client.Endpoints.CreateAsync(Pod("db-0", hostname: "db-0"));
        await east.Client.Services.CreateAsync(Headless(families: ["IPv4", "IPv6"]));
        await east.Client.ServiceExports.CreateAsync(Export("db"));
        var peer = await east.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new ObjectMeta { Name = "west" }, Spec = new ClusterPeerSpec { Addresses = { "unix:" + west.Socket } } });
        Assert.Equal("True", peer.Status.Conditions.Single(c => c.Type == "Joined").Status);
        // Imports come from peers joined both ways.
        await westClient.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new ObjectMeta { Name = "east" }, Spec = new ClusterPeerSpec { Addresses = { east.SiloAddress } } });

        await east.AwaitAnswerAsync("db.shop.svc.clusterset.local", DnsType.A, r => r.Answer.Count == 2, 20_000);
        await east.AwaitAnswerAsync("api.shop.svc.clusterset.local", DnsType.A, r => r.Answer.Count == 1, 20_000);

        // Headless: both clusters' endpoints; the same hostname in each cluster is two names.
        Assert.Equal(new[] { eastDb.Status.Ips[0], westDb.Status.Ips[0] }.Order(), await Short(east, "db.shop.svc.clusterset.local", "A"));
        Assert.Equal([eastDb.Status.Ips[1]], await Short(east, "db.shop.svc.clusterset.local", "AAAA"));
        Assert.Equal([$"db-0.east.db.shop.svc.clusterset.local. 30 IN A {eastDb.Status.Ips[0]}"], (await east.AskAsync("dig", "db-0.east.db.shop.svc.clusterset.local", "A")).Answer);
        Assert.Equal([$"db-0.west.db.shop.svc.clusterset.local. 30 IN A {westDb.Status.Ips[0]}"], (await east.AskAsync("kdig", "db-0.west.db.shop.svc.clusterset.local", "A")).Answer);
        await AssertNegative(east, "dig", "db-0.west.db.shop.svc.clusterset.local", "AAAA", "NOERROR");
        await AssertNegative(east, "dig", "west.db.shop.svc.clusterset.local", "A", "NOERROR");
        var srv = await east.AskAsync("dig", "_postgres._tcp.db.shop.svc.clusterset.local", "SRV");
        Assert.Equal(new[]
        {
            "_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 5432 db-0.east.db.shop.svc.clusterset.local.",
            "_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 7000 db-0.west.db.shop.svc.clusterset.local.",
        }.Order(), srv.Answer.Order());
        // West's endpoints lie in its network, not in a reverse zone of ours.
        Assert.Equal("REFUSED", (await east.AskAsync("dig", "-x", westDb.Status.Ips[0])).Status);

        // A ClusterSetIP import of west's service, from east's own range (IPv4 only, as the service is).
        var api = await east.Client.ServiceImports.GetAsync("shop", "api");
        var ip = Assert.Single(api.Spec.Ips);
        Assert.StartsWith("10.96.", ip);
        Assert.Equal([$"api.shop.svc.clusterset.local. 30 IN A {ip}"], (await east.AskAsync("dig", "api.shop.svc.clusterset.local", "A")).Answer);
        await AssertNegative(east, "kdig", "api.shop.svc.clusterset.local", "AAAA", "NOERROR");
        Assert.Equal("0 100 50051 api.shop.svc.clusterset.local.", (await east.DigAsync("dig", "+short", "_grpc._tcp.api.shop.svc.clusterset.local", "SRV")).Trim());
        await AssertNegative(east, "dig", "api.shop.svc.cluster.local", "A", "NXDOMAIN", "cluster.local.");

        // West withdraws its exports: its part goes, east's stays.
        await westClient.ServiceExports.DeleteAsync("shop", "db");
        await westClient.ServiceExports.DeleteAsync("shop", "api");
        await east.AwaitAnswerAsync("db.shop.svc.clusterset.local", DnsType.A, r => r.Answer.Count == 1, 20_000);
        await east.AwaitAnswerAsync("api.shop.svc.clusterset.local", DnsType.A, r => r.Rcode == (int)Rcode.NXDomain, 20_000);
        await AssertNegative(east, "dig", "db-0.west.db.shop.svc.clusterset.local", "A", "NXDOMAIN");
        Assert.Equal([$"db-0.east.db.shop.svc.clusterset.local. 30 IN A {eastDb.Status.Ips[0]}"], (await east.AskAsync("dig", "db-0.east.db.shop.svc.clusterset.local", "A")).Answer);
    }

    [Fact]
    public async Task ClusterSetZone_IsServFailBeforeTheFirstSync_AnswersFromTheLastSnapshotWhileTheSiloIsDown_AndResumes()
    {
        await using var silo = await SocketSilo.StartAsync("--ClusterSet:ClusterId=east");
        var builder = Host.CreateApplicationBuilder(["--Logging:LogLevel:Default=Warning", $"--Dns:Listen={TestPorts.Loopback()}", $"--Dns:ControlPlane=unix:{silo.Socket}"]);
        builder.Services.AddClusterDns(builder.Configuration.GetSection("Dns"));
        using var host = builder.Build();
        var handler = host.Services.GetRequiredService<DnsListenerService>().Handler;
        // Before the first snapshot the ClusterSet zone is ours but unknown: SERVFAIL.
        Assert.Equal((int)Rcode.ServFail, Queries.Ask(handler, "web.shop.svc.clusterset.local").Rcode);
        await host.StartAsync();
        try
        {
            await host.Services.GetRequiredService<ClusterFeed>().Synced.WaitAsync(TimeSpan.FromSeconds(20));
            using (var client = silo.Connect())
            {
                await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
                await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16" } });
                await client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
                await client.ServiceExports.CreateAsync(Export("web"));
            }
            await Answered(handler, "web.shop.svc.clusterset.local", r => r.Answer.Count == 1);
            var before = Queries.Ask(handler, "web.shop.svc.clusterset.local").Answer;

            await silo.StopAsync();
            Assert.Equal(before, Queries.Ask(handler, "web.shop.svc.clusterset.local").Answer);

            await silo.StartAgainAsync();
            using (var client = silo.Connect())
            {
                await client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "api", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
                await client.ServiceExports.CreateAsync(Export("api"));
                await client.ServiceExports.DeleteAsync("shop", "web");
            }
            await Answered(handler, "api.shop.svc.clusterset.local", r => r.Answer.Count == 1);
            await Answered(handler, "web.shop.svc.clusterset.local", r => r.Rcode == (int)Rcode.NXDomain);
        }
        finally
        {
            await host.StopAsync();
        }
    }

    private static async Task AssertNegative(ClusterDns dns, string tool, string name, string type, string status, string apex = "clusterset.local.")
    {
        var answer = await dns.AskAsync(tool, name, type);
        Assert.Equal(status, answer.Status);
        Assert.True(answer.Authoritative, answer.Text);
        Assert.Empty(answer.Answer);
        Assert.StartsWith(apex == "clusterset.local." ? SoaStart : $"{apex} 5 IN SOA ", Assert.Single(answer.Authority));
    }

    private static async Task<string[]> Short(ClusterDns dns, string name, string type) =>
        [.. (await dns.DigAsync("kdig", "+short", name, type)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order()];


    private static async Task Answered(Handling.QueryHandler handler, string name, Func<DecodedResponse, bool> done)
    {
        var answered = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        void Check(ZoneSnapshot _) { if (done(Queries.Ask(handler, name))) answered.TrySetResult(); }
        handler.Swapped += Check;
        try
        {
            Check(handler.Snapshot);
            await answered.Task.WaitAsync(TimeSpan.FromSeconds(20));
        }
        finally
        {
            handler.Swapped -= Check;
        }
    }
}
