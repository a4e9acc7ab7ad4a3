using ControlPlane.Contracts.V1;
using ControlPlane.Grains.ClusterSet;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Grains.Tests;

/// <summary>
/// The derivation of a ServiceImport and of the exports' Conflict conditions from the clusters'
/// contributions, after KEP-1645's constraints and conflict resolution: ports are merged (a union,
/// known by name), type and session affinity are the oldest export's.
/// </summary>
public sealed class ImportCalculatorTests
{
    private static readonly string[] Families = ["IPv4"];

    private static ServicePort Port(string name, uint port, uint target = 0, Protocol protocol = Protocol.Tcp) =>
        new() { Name = name, Port = port, Protocol = protocol, TargetPortNumber = target == 0 ? port : target };

    /// <summary>A cluster's contribution, exported <paramref name="age"/> seconds after the first.</summary>
    private static Contribution Of(string cluster, int age, params ServicePort[] ports) => Of(cluster, age, ServiceImportType.ClusterSetIp, SessionAffinity.None, ports);

    private static Contribution Of(string cluster, int age, ServiceImportType type, SessionAffinity affinity, params ServicePort[] ports) =>
        new(cluster, new Timestamp { Seconds = 1_700_000_000 + age }, type, ports, affinity, affinity == SessionAffinity.ClientIp ? 10_800u : 0,
            ["IPv4"], [new EndpointAddress { Name = $"{cluster}-1", Ready = true, Ips = { cluster == "east" ? "10.10.0.5" : "10.20.0.5" } }]);

    private static Condition Conflict(Contribution own, IReadOnlyList<Contribution> all) =>
        ImportCalculator.Conditions(null, null, own, all).Conditions.Single(c => c.Type == ImportCalculator.Conflict);

    private static string Text(ServicePort p) => $"{p.Name}:{p.Protocol}/{p.Port}";

    /// <summary>
    /// An import is an object like any other, at most 1 MiB, so that stock clients can list and
    /// watch it: the exporting clusters share the room, a small one keeps all its endpoints, and
    /// the large ones split the rest evenly, each keeping its first endpoints by name and counting
    /// those it leaves out.
    /// </summary>
    [Fact]
    public void AnImport_StaysWithinTheObjectBound_ClustersShareTheRoom()
    {
        static Contribution Cluster(string cluster, int age, int endpoints)
        {
            var list = Enumerable.Range(0, endpoints).Select(i =>
            {
                var endpoint = new EndpointAddress { Name = $"{cluster}-{i:00000}", Node = "node-1", Ready = true, Ips = { $"10.{age}.{i / 250}.{i % 250 + 1}" } };
                for (var p = 0; p < 30; p++) endpoint.Ports.Add(new NamedPort { Name = $"port-{p:00}", Port = (uint)(8000 + p) });
                return endpoint;
            }).Reverse().ToList();
            return new(cluster, new Timestamp { Seconds = 1_700_000_000 + age }, ServiceImportType.ClusterSetIp, [Port("http", 80)],
                SessionAffinity.None, 0, ["IPv4"], list);
        }
        var small = Cluster("east", 1, 5);
        var large = Cluster("west", 2, 4000);
        var import = ImportCalculator.Import("ns", "web", [small, large], Families)!;
        Assert.True(import.CalculateSize() <= Validation.ObjectSize.MaxObjectBytes, $"the import is {import.CalculateSize()} bytes");
        var (east, west) = (import.Status.Clusters.Single(c => c.Cluster == "east"), import.Status.Clusters.Single(c => c.Cluster == "west"));
        Assert.Equal((5, 0u), (east.Endpoints.Count, east.Omitted));
        Assert.True(west.Omitted > 0);
        Assert.Equal(4000, west.Endpoints.Count + (int)west.Omitted);
        Assert.Equal(Enumerable.Range(0, west.Endpoints.Count).Select(i => $"west-{i:00000}"), west.Endpoints.Select(e => e.Name));
        // The room left is used: one more endpoint would not fit.
        Assert.True(import.CalculateSize() + 2 * Validation.ObjectSize.EntrySize(west.Endpoints[0]) > Validation.ObjectSize.MaxObjectBytes - 256);

        var both = ImportCalculator.Import("ns", "web", [Cluster("east", 1, 4000), large], Families)!;
        Assert.True(both.CalculateSize() <= Validation.ObjectSize.MaxObjectBytes, $"the import is {both.CalculateSize()} bytes");
        var kept = both.Status.Clusters.Select(c => c.Endpoints.Count).ToArray();
        Assert.InRange(kept[0] - kept[1], -1, 1);
        Assert.All(both.Status.Clusters, c => Assert.Equal(4000, c.Endpoints.Count + (int)c.Omitted));
    }

    /// <summary>
    /// An export carries its service's endpoints as Kubernetes' EndpointSlices do, one family
    /// each: only the addresses of the service's IP families, and no endpoint left without one,
    /// so that an IPv4 service's headless import answers no AAAA (and an IPv6 one no A).
    /// </summary>
    [Theory]
    [InlineData("IPv4", "10.10.0.5")]
    [InlineData("IPv6", "fd00:10::5")]
    public void AnExportsEndpoints_HoldOnlyTheServicesFamilies(string family, string kept)
    {
        var export = new ServiceExport { Metadata = new ObjectMeta { Namespace = "shop", Name = "db" } };
        var service = new Service
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "db" },
            Spec = new ServiceSpec { Type = ServiceType.Headless, Network = "blue", IpFamilies = { family } },
        };
        var set = new ServiceEndpoints
        {
            Endpoints =
            {
                new EndpointAddress { Name = "db-0", Ready = true, Ips = { "10.10.0.5", "fd00:10::5" } },
                new EndpointAddress { Name = "db-1", Ready = true, Ips = { family == "IPv4" ? "fd00:10::6" : "10.10.0.6" } },
            },
        };

        var (contribution, reason, _) = Contribution.Of("east", export, service, set);

        Assert.Null(reason);
        var endpoint = Assert.Single(contribution!.Endpoints);
        Assert.Equal("db-0", endpoint.Name);
        Assert.Equal([kept], endpoint.Ips);
        // The stored set is not changed.
        Assert.Equal(2, set.Endpoints[0].Ips.Count);
    }

    [Fact]
    public void DifferentPortLists_AreMerged_WithoutConflict()
    {
        // The tester's example: east exports web with [http:80]; west's younger export has
        // [http:80 (targetPort 8080), metrics:9090].
        var east = Of("east", 0, Port("http", 80));
        var west = Of("west", 10, Port("http", 80, 8080), Port("metrics", 9090));
        IReadOnlyList<Contribution> all = [west, east];

        var import = ImportCalculator.Import("shop", "web", all, Families)!;

        Assert.Equal(["http:Tcp/80", "metrics:Tcp/9090"], import.Spec.Ports.Select(Text));
        // Targets are each cluster's own, kept in its part of the status.
        Assert.Equal(8080u, import.Status.Clusters.Single(c => c.Cluster == "west").Ports.Single(p => p.Name == "http").TargetPortNumber);
        foreach (var own in all)
        {
            var conflict = Conflict(own, all);
            Assert.Equal(("False", "NoConflict"), (conflict.Status, conflict.Reason));
        }
    }

    [Fact]
    public void APortNameDefinedDifferently_IsAConflictOfTheYoungerExport_AndTheOldestDefinitionWins()
    {
        // west's export is older here: its definition of "http" wins, east's younger one is in conflict.
        var west = Of("west", 0, Port("http", 80));
        var east = Of("east", 5, Port("http", 81), Port("admin", 9000));
        IReadOnlyList<Contribution> all = [east, west];

        var import = ImportCalculator.Import("shop", "web", all, Families)!;

        Assert.Equal(["http:Tcp/80", "admin:Tcp/9000"], import.Spec.Ports.Select(Text));
        Assert.Equal("False", Conflict(west, all).Status);
        var conflict = Conflict(east, all);
        Assert.Equal(("True", "PortConflict"), (conflict.Status, conflict.Reason));
        Assert.Equal("port 'http' (TCP 81) is defined differently from the same port of the oldest export that has it (TCP 80), "
            + "which the ClusterSet uses: cluster 'west', exported 2023-11-14 22:13:20Z", conflict.Message);

        // The protocol counts as part of the definition too.
        var udp = Of("east", 5, Port("http", 80, protocol: Protocol.Udp));
        Assert.Equal("PortConflict", Conflict(udp, [udp, west]).Reason);
    }

    [Fact]
    public void APortWhoseProtocolAndNumberAnOlderPortOfAnotherNameHolds_IsAConflict()
    {
        var east = Of("east", 0, Port("http", 80));
        var west = Of("west", 1, Port("web", 80), Port("metrics", 9090));
        IReadOnlyList<Contribution> all = [east, west];

        var import = ImportCalculator.Import("shop", "web", all, Families)!;

        Assert.Equal(["http:Tcp/80", "metrics:Tcp/9090"], import.Spec.Ports.Select(Text));
        var conflict = Conflict(west, all);
        Assert.Equal(("True", "PortConflict"), (conflict.Status, conflict.Reason));
        Assert.StartsWith("port 'web' (TCP 80) has the protocol and number of port 'http' (TCP 80) of an older export", conflict.Message);
        Assert.Contains("cluster 'east'", conflict.Message);
    }

    [Fact]
    public void APortOnlyAYoungerExportHas_IsDecidedByTheOldestExportThatHasIt()
    {
        // east (oldest) has no "metrics"; west's is older than north's, so west's wins.
        var east = Of("east", 0, Port("http", 80));
        var west = Of("west", 1, Port("http", 80), Port("metrics", 9090));
        var north = Of("north", 2, Port("http", 80), Port("metrics", 9091));
        IReadOnlyList<Contribution> all = [north, west, east];

        var import = ImportCalculator.Import("shop", "web", all, Families)!;

        Assert.Equal(["http:Tcp/80", "metrics:Tcp/9090"], import.Spec.Ports.Select(Text));
        Assert.Equal("False", Conflict(west, all).Status);
        var conflict = Conflict(north, all);
        Assert.Equal("PortConflict", conflict.Reason);
        Assert.Contains("cluster 'west'", conflict.Message);
    }

    [Fact]
    public void TypeAndSessionAffinity_AreTheOldestExports_AndTheirConflictMessagesAreGrammatical()
    {
        var east = Of("east", 0, Port("http", 80));
        var headless = Of("west", 1, ServiceImportType.HeadlessImport, SessionAffinity.None, Port("http", 80));
        var sticky = Of("west", 1, ServiceImportType.ClusterSetIp, SessionAffinity.ClientIp, Port("http", 80));

        var import = ImportCalculator.Import("shop", "web", [headless, east], Families)!;
        Assert.Equal(ServiceImportType.ClusterSetIp, import.Spec.Type);
        var type = Conflict(headless, [headless, east]);
        Assert.Equal(("True", "TypeConflict"), (type.Status, type.Reason));
        Assert.Equal("the service type Headless differs from that of the oldest export (ClusterSetIP), which the ClusterSet uses: "
            + "cluster 'east', exported 2023-11-14 22:13:20Z", type.Message);

        Assert.Equal(SessionAffinity.None, ImportCalculator.Import("shop", "web", [sticky, east], Families)!.Spec.SessionAffinity);
        var affinity = Conflict(sticky, [sticky, east]);
        Assert.Equal(("True", "SessionAffinityConflict"), (affinity.Status, affinity.Reason));
        Assert.Equal("the session affinity ClientIP, timeout 10800 s differs from that of the oldest export (None), which the ClusterSet uses: "
            + "cluster 'east', exported 2023-11-14 22:13:20Z", affinity.Message);
    }
}
