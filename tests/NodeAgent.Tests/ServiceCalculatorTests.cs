using System.Net;
using ControlPlane.Contracts.V1;
using ControlPlane.NodeAgent.Services;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>The pure service calculation: which endpoints a VIP:port leads to, and on which port.</summary>
public sealed class ServiceCalculatorTests
{
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

        var group = ServiceCalculator.ForService(service, endpoints);

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

        var group = ServiceCalculator.ForService(service, endpoints);

        Assert.All(group.Ports, p => Assert.Empty(p.Backends));
        Assert.Equal(["noep4", "noep6"], group.Elements.Select(e => e.Set).Order());
        Assert.Empty(group.Chains);
    }

    [Fact]
    public void ClientIpAffinity_AddsTheRememberingChain_WithTheDefaultTimeout()
    {
        var service = Service(new ServicePort { Protocol = Protocol.Tcp, Port = 80 });
        service.Spec.SessionAffinity = SessionAffinity.ClientIp;
        var endpoints = new ServiceEndpoints { Endpoints = { Address("a", true, ["10.0.0.1", "fd00::1"]) } };

        var group = ServiceCalculator.ForService(service, endpoints);

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
        Assert.Empty(ServiceCalculator.ForService(headless, endpoints).Elements);
        Assert.Empty(ServiceCalculator.ForService(null, endpoints).Elements);
    }
}
