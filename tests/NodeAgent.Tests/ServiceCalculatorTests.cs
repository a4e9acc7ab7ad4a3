using System.Net;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.ClusterSet;
using ControlPlane.NodeAgent.Services;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>The pure service calculation: which endpoints a VIP:port leads to, and on which port.</summary>
public sealed class ServiceCalculatorTests
{
    private static readonly Dictionary<string, Network> Networks = new()
    {
        ["blue"] = new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.0.0.0/16", Ipv6Cidr = "fd00::/64" } },
    };

    private static Service Service(params ServicePort[] ports)
    {
        var service = new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "default" },
            Spec = new ServiceSpec { Network = "blue" },
            Status = new ServiceStatus { ClusterIps = { "10.96.0.10", "fd00:96::a" } },
        };
        service.Spec.Ports.Add(ports);
        return service;
    }

    private static EndpointAddress Address(string name, bool ready, string[] ips, params NamedPort[] ports)
    {
        var address = new EndpointAddress { Name = name, Ready = ready };
        address.Ips.Add(ips);
        address.Ports.Add(ports);
        return address;
    }

    [Fact]
    public void NamedTargetPort_IsResolvedPerEndpoint_AndEndpointsWithoutItAreLeftOut()
    {
        var service = Service(new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80, TargetPortName = "web" });
        var endpoints = new ServiceEndpoints
        {
            Endpoints =
            {
                Address("a", true, ["10.0.0.1"], new NamedPort { Name = "web", Protocol = Protocol.Tcp, Port = 8080 }),
                Address("b", true, ["10.0.0.2"], new NamedPort { Name = "web", Protocol = Protocol.Tcp, Port = 9090 }),
                Address("c", true, ["10.0.0.3"], new NamedPort { Name = "web", Protocol = Protocol.Udp, Port = 7070 }),
                Address("d", true, ["10.0.0.4"]),
            },
        };

        var group = ServiceCalculator.ForService(service, endpoints, Networks);

        var v4 = group.Ports.Single(p => p.Vip.Equals(IPAddress.Parse("10.96.0.10")));
        Assert.Equal([new Backend(IPAddress.Parse("10.0.0.1"), 8080), new Backend(IPAddress.Parse("10.0.0.2"), 9090)], v4.Backends);
        Assert.Equal(["lb_2"], group.Chains.Distinct());
        // The IPv6 VIP has no IPv6 endpoint: it rejects.
        Assert.Contains(group.Elements, e => e.Set == "noep6");
        Assert.Equal(2, group.Elements.Count(e => e.Set == "be4"));
    }

    [Fact]
    public void NotReadyEndpoints_GetNothing_AndAllNotReadyMeansReject()
    {
        var service = Service(new ServicePort { Protocol = Protocol.Udp, Port = 53, TargetPortNumber = 5353 });
        var endpoints = new ServiceEndpoints { Endpoints = { Address("a", false, ["10.0.0.1", "fd00::1"]) } };

        var group = ServiceCalculator.ForService(service, endpoints, Networks);

        Assert.All(group.Ports, p => Assert.Empty(p.Backends));
        Assert.Equal(["noep4", "noep6", "vip4", "vip6", "vipsrc4", "vipsrc6"], group.Elements.Select(e => e.Set).Order());
        Assert.Empty(group.Chains);
    }

    [Fact]
    public void PublishNotReadyAddresses_SendsToNotReadyEndpoints()
    {
        var service = Service(new ServicePort { Protocol = Protocol.Udp, Port = 53, TargetPortNumber = 5353 });
        service.Spec.PublishNotReadyAddresses = true;
        var endpoints = new ServiceEndpoints { Endpoints = { Address("a", false, ["10.0.0.1", "fd00::1"]), Address("b", true, ["10.0.0.2"]) } };

        var group = ServiceCalculator.ForService(service, endpoints, Networks);

        Assert.Equal([IPAddress.Parse("10.0.0.1"), IPAddress.Parse("10.0.0.2")], group.Ports.Single(p => p.Vip.Equals(IPAddress.Parse("10.96.0.10"))).Backends.Select(b => b.Address));
        Assert.Equal([IPAddress.Parse("fd00::1")], group.Ports.Single(p => p.Vip.Equals(IPAddress.Parse("fd00:96::a"))).Backends.Select(b => b.Address));
        Assert.DoesNotContain(group.Elements, e => e.Set.StartsWith("noep", StringComparison.Ordinal));
    }

    [Fact]
    public void EachVip_ServesTheRangeOfItsServicesNetwork_OfItsFamily()
    {
        var service = Service(new ServicePort { Protocol = Protocol.Tcp, Port = 80 });

        var group = ServiceCalculator.ForService(service, null, Networks);

        var v4 = Assert.Single(group.Elements, e => e.Set == "vipsrc4").Element;
        Assert.Equal(new byte[] { 10, 96, 0, 10, 10, 0, 0, 0 }, v4.Key);
        Assert.Equal(new byte[] { 10, 96, 0, 10, 10, 0, 255, 255 }, v4.KeyEnd);
        var v6 = Assert.Single(group.Elements, e => e.Set == "vipsrc6").Element;
        Assert.Equal(IPAddress.Parse("fd00::").GetAddressBytes(), v6.Key![16..]);
        Assert.Equal(IPAddress.Parse("fd00::ffff:ffff:ffff:ffff").GetAddressBytes(), v6.KeyEnd![16..]);
        // A network the agent does not know (yet): the VIPs serve no one, not everyone.
        Assert.DoesNotContain(ServiceCalculator.ForService(service, null, new Dictionary<string, Network>()).Elements, e => e.Set.StartsWith("vipsrc", StringComparison.Ordinal));
    }

    [Fact]
    public void ClientIpAffinity_AddsTheRememberingChain_WithTheDefaultTimeout()
    {
        var service = Service(new ServicePort { Protocol = Protocol.Tcp, Port = 80 });
        service.Spec.SessionAffinity = SessionAffinity.ClientIp;
        var endpoints = new ServiceEndpoints { Endpoints = { Address("a", true, ["10.0.0.1", "fd00::1"]) } };

        var group = ServiceCalculator.ForService(service, endpoints, Networks);

        Assert.Contains("aff_10800", group.Chains);
        Assert.Equal(2, group.Elements.Count(e => e.Set.StartsWith("affsvc", StringComparison.Ordinal)));
        // The service port itself is the target port when none is given.
        Assert.All(group.Ports, p => Assert.Equal((ushort)80, p.Backends.Single().Port));
    }

    [Fact]
    public void HeadlessAndExternalNameServices_ProgramNothing()
    {
        var headless = Service(new ServicePort { Protocol = Protocol.Tcp, Port = 80 });
        headless.Spec.Type = ServiceType.Headless;
        var endpoints = new ServiceEndpoints { Endpoints = { Address("a", true, ["10.0.0.1"]) } };
        Assert.Empty(ServiceCalculator.ForService(headless, endpoints, Networks).Elements);
        Assert.Empty(ServiceCalculator.ForService(null, endpoints, Networks).Elements);
    }

    [Fact]
    public void ImportPort_IsBalancedOnlyOverTheClustersWhoseExportHasThatPort()
    {
        // east exports [http:80]; west's younger export [http:80 (target 8080), metrics:9090]: the
        // import has both ports, and metrics leads to west's endpoints only.
        var east = new Contribution("east", new Google.Protobuf.WellKnownTypes.Timestamp { Seconds = 100 }, ServiceImportType.ClusterSetIp,
            [new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80, TargetPortNumber = 80 }], SessionAffinity.None, 0, ["IPv4"],
            [Address("e", true, ["10.10.0.5"])]);
        var west = new Contribution("west", new Google.Protobuf.WellKnownTypes.Timestamp { Seconds = 200 }, ServiceImportType.ClusterSetIp,
            [new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80, TargetPortNumber = 8080 },
             new ServicePort { Name = "metrics", Protocol = Protocol.Tcp, Port = 9090, TargetPortNumber = 9090 }], SessionAffinity.None, 0, ["IPv4"],
            [Address("w", true, ["10.20.0.5"])]);
        var import = ImportCalculator.Import("shop", "web", [east, west], ["IPv4"])!;
        import.Spec.Ips.Add("10.97.0.7");

        var group = ServiceCalculator.ForImport(import, Networks);

        var http = group.Ports.Single(p => p.Port == 80);
        Assert.Equal([new Backend(IPAddress.Parse("10.10.0.5"), 80), new Backend(IPAddress.Parse("10.20.0.5"), 8080)], http.Backends);
        var metrics = group.Ports.Single(p => p.Port == 9090);
        Assert.Equal([new Backend(IPAddress.Parse("10.20.0.5"), 9090)], metrics.Backends);
    }

    [Fact]
    public void ImportPort_IsMatchedByNameAndProtocol_NotByAnotherNameOnTheSameNumber()
    {
        // The import's "http" is TCP 80 (the oldest export's). north calls its port 80 "web" (an
        // unrelated port: none of its endpoints); south gave "http" the number 81 (a conflict the
        // oldest export won: still its "http", reached at south's own target).
        var import = new ServiceImport
        {
            Metadata = new ObjectMeta { Namespace = "shop", Name = "web" },
            Spec = new ServiceImportSpec { Type = ServiceImportType.ClusterSetIp, Ips = { "10.97.0.7" }, Ports = { new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80 } } },
            Status = new ServiceImportStatus
            {
                Clusters =
                {
                    new ClusterEndpoints { Cluster = "north", Ports = { new ServicePort { Name = "web", Protocol = Protocol.Tcp, Port = 80, TargetPortNumber = 80 } }, Endpoints = { Address("n", true, ["10.30.0.5"]) } },
                    new ClusterEndpoints { Cluster = "south", Ports = { new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 81, TargetPortNumber = 8081 } }, Endpoints = { Address("s", true, ["10.40.0.5"]) } },
                },
            },
        };

        var http = ServiceCalculator.ForImport(import, Networks).Ports.Single();

        Assert.Equal([new Backend(IPAddress.Parse("10.40.0.5"), 8081)], http.Backends);
    }
}
