using System.Net;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;
using ControlPlane.Grains.ClusterSet;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// The ClusterSet zone built from ServiceImports (no silo): answers checked as zone-file text, after
/// the Multicluster DNS specification (KEP-1645, schema 1.0.0).
/// </summary>
public sealed class ClusterSetRecordsTests
{
    private const string Soa = "clusterset.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 5";

    private static ClusterZoneOptions Options() => new() { ServiceRanges = ["10.96.0.0/16", "fd00:96::/112"] };

    private static EndpointAddress At(string name, string hostname, params string[] ips)
    {
        var endpoint = new EndpointAddress { Name = name, Ready = true, Hostname = hostname, Subdomain = hostname.Length > 0 ? "db" : "", Ips = { ips } };
        endpoint.Ports.Add(new NamedPort { Name = "pg", Port = name == "db-1" ? 6543u : 5432u });
        return endpoint;
    }

    /// <summary>web: a dual-stack ClusterSetIP import. db: headless, exported by east (a named target port) and west (a numbered one).</summary>
    private static ServiceImport[] Imports() =>
    [
        new()
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "web" },
            Spec = new ServiceImportSpec
            {
                Type = ServiceImportType.ClusterSetIp, Ips = { "10.96.5.1", "fd00:96::51" }, IpFamilies = { "IPv4", "IPv6" },
                Ports = { new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80 }, new ServicePort { Protocol = Protocol.Tcp, Port = 9090 } },
            },
            Status = new ServiceImportStatus { Clusters = { new ClusterEndpoints { Cluster = "east", Endpoints = { At("web-1", "", "10.244.0.20") } } } },
        },
        new()
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "db" },
            Spec = new ServiceImportSpec { Type = ServiceImportType.HeadlessImport, Ports = { new ServicePort { Name = "postgres", Protocol = Protocol.Tcp, Port = 5432 } } },
            Status = new ServiceImportStatus
            {
                Clusters =
                {
                    new ClusterEndpoints
                    {
                        Cluster = "east",
                        Ports = { new ServicePort { Name = "postgres", Port = 5432, TargetPortName = "pg" } },
                        Endpoints = { At("db-0", "db-0", "10.244.0.10", "fd00:244::10"), At("db-1", "db-1", "10.244.0.11") },
                    },
                    new ClusterEndpoints
                    {
                        Cluster = "west",
                        Ports = { new ServicePort { Name = "postgres", Port = 5432, TargetPortNumber = 7000 } },
                        Endpoints = { At("db-0", "db-0", "10.20.0.10"), At("db-9", "", "10.20.0.99") },
                    },
                },
            },
        },
        // Headless with nothing to serve, and a ClusterSetIP import without addresses (no family in common).
        new() { Metadata = new ObjectMeta { Namespace = "shop", Name = "empty" }, Spec = new ServiceImportSpec { Type = ServiceImportType.HeadlessImport } },
        new()
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "noip" },
            Spec = new ServiceImportSpec { Type = ServiceImportType.ClusterSetIp, Ports = { new ServicePort { Name = "http", Port = 80 } } },
        },
    ];

    /// <summary>The cluster zone holds the local headless service db with db-0 only: its address keeps its cluster name.</summary>
    private static readonly QueryHandler Handler = Build(Options(), out _);

    private static QueryHandler Build(ClusterZoneOptions options, out int unclaimed, IEnumerable<ServiceImport>? imports = null)
    {
        var db = new Service { Metadata = new ObjectMeta { Namespace = "shop", Name = "db" }, Spec = new ServiceSpec { Type = ServiceType.Headless } };
        var set = new ServiceEndpoints { Metadata = new ObjectMeta { Namespace = "shop", Name = "db" }, Endpoints = { At("db-0", "db-0", "10.244.0.10", "fd00:244::10") } };
        var records = ClusterRecords.Build(options, 7, [db], new Dictionary<string, ServiceEndpoints> { ["shop/db"] = set }, imports ?? Imports(),
            ["10.244.0.0/16", "fd00:244::/64"], out unclaimed);
        return new QueryHandler(ZoneSnapshot.Build(records));
    }

    public static TheoryData<string, DnsType, int, string[], string[]> Cases => new()
    {
        // ClusterSetIP: A and AAAA, SRV for named ports to the service name, PTR for the ClusterSetIPs.
        { "web.shop.svc.clusterset.local", DnsType.A, 0, ["web.shop.svc.clusterset.local. 30 IN A 10.96.5.1"], [] },
        { "web.shop.svc.clusterset.local", DnsType.AAAA, 0, ["web.shop.svc.clusterset.local. 30 IN AAAA fd00:96::51"], [] },
        { "_http._tcp.web.shop.svc.clusterset.local", DnsType.SRV, 0, ["_http._tcp.web.shop.svc.clusterset.local. 30 IN SRV 0 100 80 web.shop.svc.clusterset.local."], [] },
        { "1.5.96.10.in-addr.arpa", DnsType.PTR, 0, ["1.5.96.10.in-addr.arpa. 30 IN PTR web.shop.svc.clusterset.local."], [] },
        { ReverseZones.Name(IPAddress.Parse("fd00:96::51")), DnsType.PTR, 0, [$"{ReverseZones.Name(IPAddress.Parse("fd00:96::51"))}. 30 IN PTR web.shop.svc.clusterset.local."], [] },
        { "web.shop.svc.clusterset.local", DnsType.TXT, 0, [], [Soa] },
        // No name singles out a cluster, and no endpoint names under a ClusterSetIP import.
        { "east.web.shop.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "web-1.east.web.shop.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "_9090._tcp.web.shop.svc.clusterset.local", DnsType.SRV, 3, [], [Soa] },

        // Headless: every endpoint address of every cluster, of each family.
        { "db.shop.svc.clusterset.local", DnsType.A, 0, ["db.shop.svc.clusterset.local. 30 IN A 10.244.0.10", "db.shop.svc.clusterset.local. 30 IN A 10.244.0.11", "db.shop.svc.clusterset.local. 30 IN A 10.20.0.10", "db.shop.svc.clusterset.local. 30 IN A 10.20.0.99"], [] },
        { "db.shop.svc.clusterset.local", DnsType.AAAA, 0, ["db.shop.svc.clusterset.local. 30 IN AAAA fd00:244::10"], [] },
        // <hostname>.<clusterid>.<svc>: the same hostname in two clusters is two names.
        { "db-0.east.db.shop.svc.clusterset.local", DnsType.A, 0, ["db-0.east.db.shop.svc.clusterset.local. 30 IN A 10.244.0.10"], [] },
        { "db-0.east.db.shop.svc.clusterset.local", DnsType.AAAA, 0, ["db-0.east.db.shop.svc.clusterset.local. 30 IN AAAA fd00:244::10"], [] },
        { "db-0.west.db.shop.svc.clusterset.local", DnsType.A, 0, ["db-0.west.db.shop.svc.clusterset.local. 30 IN A 10.20.0.10"], [] },
        { "db-1.east.db.shop.svc.clusterset.local", DnsType.AAAA, 0, [], [Soa] },
        // Without a hostname, one derived from the address (as in the cluster zone).
        { "10-20-0-99.west.db.shop.svc.clusterset.local", DnsType.A, 0, ["10-20-0-99.west.db.shop.svc.clusterset.local. 30 IN A 10.20.0.99"], [] },
        // SRV: one per endpoint, the port its own cluster's service port reaches there.
        {
            "_postgres._tcp.db.shop.svc.clusterset.local", DnsType.SRV, 0,
            [
                "_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 5432 db-0.east.db.shop.svc.clusterset.local.",
                "_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 6543 db-1.east.db.shop.svc.clusterset.local.",
                "_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 7000 db-0.west.db.shop.svc.clusterset.local.",
                "_postgres._tcp.db.shop.svc.clusterset.local. 30 IN SRV 0 100 7000 10-20-0-99.west.db.shop.svc.clusterset.local.",
            ],
            []
        },
        // <clusterid>.<svc> is an empty non-terminal: NODATA, no records of its own.
        { "east.db.shop.svc.clusterset.local", DnsType.A, 0, [], [Soa] },
        { "_tcp.db.shop.svc.clusterset.local", DnsType.SRV, 0, [], [Soa] },
        { "db-2.east.db.shop.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "north.db.shop.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        // PTR: a local endpoint keeps its cluster name; one without a cluster PTR gets the ClusterSet name.
        { "10.0.244.10.in-addr.arpa", DnsType.PTR, 0, ["10.0.244.10.in-addr.arpa. 30 IN PTR db-0.db.shop.svc.cluster.local."], [] },
        { "11.0.244.10.in-addr.arpa", DnsType.PTR, 0, ["11.0.244.10.in-addr.arpa. 30 IN PTR db-1.east.db.shop.svc.clusterset.local."], [] },

        // Nothing to serve: NXDOMAIN (specification §2.4.1).
        { "empty.shop.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "noip.shop.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "_http._tcp.noip.shop.svc.clusterset.local", DnsType.SRV, 3, [], [Soa] },

        // The apex, the schema version, empty non-terminals, names that do not exist.
        { "clusterset.local", DnsType.SOA, 0, ["clusterset.local. 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 7 7200 1800 86400 5"], [] },
        { "clusterset.local", DnsType.NS, 0, ["clusterset.local. 30 IN NS ns.dns.cluster.local."], [] },
        { "dns-version.clusterset.local", DnsType.TXT, 0, ["dns-version.clusterset.local. 30 IN TXT \"1.0.0\""], [] },
        { "clusterset.local", DnsType.A, 0, [], [Soa] },
        { "svc.clusterset.local", DnsType.A, 0, [], [Soa] },
        { "shop.svc.clusterset.local", DnsType.AAAA, 0, [], [Soa] },
        { "nope.shop.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "web.other.svc.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "pod.clusterset.local", DnsType.A, 3, [], [Soa] },
        { "10-244-0-10.shop.pod.clusterset.local", DnsType.A, 3, [], [Soa] },
    };

    [Theory]
    [MemberData(nameof(Cases))]
    public void Lookup_AnswersAsTheSpecificationSays(string name, DnsType type, int rcode, string[] answer, string[] authority)
    {
        var response = Ask(Handler, name, type);

        Assert.Equal(rcode, response.Rcode);
        Assert.True(response.Authoritative);
        Assert.Equal(answer.Order(), response.Answer.Order());
        Assert.Equal(authority, response.Authority);
    }

    [Fact]
    public void OtherClustersEndpoints_GetNoPtr_AndAreNotCountedAsUnclaimed()
    {
        var handler = Build(Options(), out var unclaimed);

        // 10.20.0.0/16 is west's network, not a reverse zone of ours.
        var response = Ask(handler, "10.0.20.10.in-addr.arpa", DnsType.PTR);
        Assert.Equal((int)Rcode.Refused, response.Rcode);
        Assert.False(response.Authoritative);
        Assert.Equal(0, unclaimed);
    }

    [Fact]
    public void ClusterSetIpOutsideTheServiceRanges_IsCountedAsUnclaimed()
    {
        Build(new ClusterZoneOptions { ServiceRanges = ["10.97.0.0/16"] }, out var unclaimed);

        Assert.Equal(2, unclaimed); // 10.96.5.1 and fd00:96::51
    }

    [Fact]
    public void ZoneName_IsConfigurable_AndEmptyServesNone()
    {
        var mesh = Build(new ClusterZoneOptions { ServiceRanges = ["10.96.0.0/16"], ClusterSetZone = "Mesh.Example." }, out _);
        Assert.Equal(["web.shop.svc.mesh.example. 30 IN A 10.96.5.1"], Ask(mesh, "web.shop.svc.mesh.example", DnsType.A).Answer);
        Assert.Equal((int)Rcode.Refused, Ask(mesh, "web.shop.svc.clusterset.local", DnsType.A).Rcode);

        var off = Build(new ClusterZoneOptions { ServiceRanges = ["10.96.0.0/16"], ClusterSetZone = "" }, out _);
        Assert.Equal((int)Rcode.Refused, Ask(off, "web.shop.svc.clusterset.local", DnsType.A).Rcode);
        // No ClusterSet PTR either: the ClusterSetIP is an address nobody names.
        Assert.Equal((int)Rcode.NXDomain, Ask(off, "1.5.96.10.in-addr.arpa", DnsType.PTR).Rcode);
    }

    [Fact]
    public void EndpointNameLongerThanADnsName_KeepsItsAddresses_WithoutHostnameOrSrvRecords()
    {
        var label = new string('h', 63);
        var cluster = new string('c', 63);
        var service = new string('s', 63);
        var ns = new string('n', 63);
        var import = new ServiceImport
        {
            Metadata = new ObjectMeta { Namespace = ns, Name = service },
            Spec = new ServiceImportSpec { Type = ServiceImportType.HeadlessImport, Ports = { new ServicePort { Name = "postgres", Port = 5432 } } },
            Status = new ServiceImportStatus
            {
                Clusters =
                {
                    new ClusterEndpoints
                    {
                        Cluster = cluster, Ports = { new ServicePort { Name = "postgres", Port = 5432 } },
                        Endpoints = { new EndpointAddress { Name = "a", Hostname = label, Subdomain = service, Ips = { "10.20.0.1" } }, new EndpointAddress { Name = "b", Ips = { "10.20.0.2" } } },
                    },
                },
            },
        };
        var handler = Build(Options(), out _, [import]);

        var name = $"{service}.{ns}.svc.clusterset.local";
        Assert.Equal(2, Ask(handler, name, DnsType.A).Answer.Count);
        Assert.Equal([$"_postgres._tcp.{name}. 30 IN SRV 0 100 5432 10-20-0-2.{cluster}.{name}."], Ask(handler, $"_postgres._tcp.{name}", DnsType.SRV).Answer);
    }

    /// <summary>east exports [http:80]; west's younger export has [http:80 (target 8080), metrics:9090].</summary>
    private static ServiceImport Merged(ServiceImportType type)
    {
        Contribution Of(string cluster, long seconds, string ip, params ServicePort[] ports) => new(cluster, new Google.Protobuf.WellKnownTypes.Timestamp { Seconds = seconds },
            type, ports, SessionAffinity.None, 0, ["IPv4"], [new EndpointAddress { Name = $"{cluster}-1", Ready = true, Ips = { ip } }]);
        var import = ImportCalculator.Import("shop", "web", [
            Of("east", 100, "10.244.0.20", new ServicePort { Name = "http", Port = 80, TargetPortNumber = 80 }),
            Of("west", 200, "10.20.0.20", new ServicePort { Name = "http", Port = 80, TargetPortNumber = 8080 }, new ServicePort { Name = "metrics", Port = 9090, TargetPortNumber = 9090 }),
        ], ["IPv4"])!;
        if (type == ServiceImportType.ClusterSetIp) import.Spec.Ips.Add("10.96.5.1");
        return import;
    }

    [Fact]
    public void ImportOfExportsWithDifferentPorts_HasSrvForEveryPortOfTheUnion()
    {
        var handler = Build(Options(), out _, [Merged(ServiceImportType.ClusterSetIp)]);

        Assert.Equal(["_metrics._tcp.web.shop.svc.clusterset.local. 30 IN SRV 0 100 9090 web.shop.svc.clusterset.local."],
            Ask(handler, "_metrics._tcp.web.shop.svc.clusterset.local", DnsType.SRV).Answer);
        Assert.Equal(["_http._tcp.web.shop.svc.clusterset.local. 30 IN SRV 0 100 80 web.shop.svc.clusterset.local."],
            Ask(handler, "_http._tcp.web.shop.svc.clusterset.local", DnsType.SRV).Answer);

        // Headless: a port's SRV records point only to the endpoints of clusters whose export has it.
        var headless = Build(Options(), out _, [Merged(ServiceImportType.HeadlessImport)]);
        Assert.Equal(["_metrics._tcp.web.shop.svc.clusterset.local. 30 IN SRV 0 100 9090 10-20-0-20.west.web.shop.svc.clusterset.local."],
            Ask(headless, "_metrics._tcp.web.shop.svc.clusterset.local", DnsType.SRV).Answer);
        Assert.Equal(2, Ask(headless, "_http._tcp.web.shop.svc.clusterset.local", DnsType.SRV).Answer.Count);
    }

    private static DecodedResponse Ask(QueryHandler handler, string name, DnsType type)
    {
        var buffer = new byte[4096];
        var length = handler.Handle(Queries.Build(name, type, ednsSize: 4096), buffer, tcp: false);
        return DecodedResponse.Decode(buffer.AsSpan(0, length));
    }
}
