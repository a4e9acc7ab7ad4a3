using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Silo.Tests;

/// <summary>Small builders for API objects.</summary>
internal static class Fixtures
{
    public static Namespace Namespace(string name) => new() { Metadata = new ObjectMeta { Name = name } };

    public static Network Network(string name, uint vni, string ipv4, string ipv6 = "", uint block = 0) => new()
    {
        Metadata = new ObjectMeta { Name = name },
        Spec = new NetworkSpec { Vni = vni, Ipv4Cidr = ipv4, Ipv6Cidr = ipv6, Ipv4BlockPrefixLength = block },
    };

    public static Node Node(string name, string ip = "10.255.0.1") => new()
    {
        Metadata = new ObjectMeta { Name = name },
        Spec = new NodeSpec { UnderlayIp = ip },
    };

    public static Endpoint Endpoint(string ns, string name, string network, string node, bool ready = true, params (string, string)[] labels)
    {
        var endpoint = new Endpoint
        {
            Metadata = new ObjectMeta { Name = name, Namespace = ns },
            Spec = new EndpointSpec { Network = network, Node = node, Ready = ready },
        };
        foreach (var (key, value) in labels) endpoint.Metadata.Labels[key] = value;
        return endpoint;
    }

    public static Service Service(string ns, string name, string network, params (string, string)[] selector)
    {
        var service = new Service
        {
            Metadata = new ObjectMeta { Name = name, Namespace = ns },
            Spec = new ServiceSpec { Type = ServiceType.ClusterIp, Network = network, Ports = { new ServicePort { Name = "http", Port = 80, TargetPortName = "http" } } },
        };
        foreach (var (key, value) in selector) service.Spec.Selector[key] = value;
        return service;
    }

    /// <summary>A namespace "ns", network "net" (10.20.0.0/16) and node "node-a".</summary>
    public static async Task SeedAsync(ControlPlaneClient client, string network = "net", string cidr = "10.20.0.0/16", uint vni = 100, uint block = 0)
    {
        await client.Namespaces.CreateAsync(Namespace("ns"));
        await client.Nodes.CreateAsync(Node("node-a"));
        await client.Networks.CreateAsync(Network(network, vni, cidr, block: block));
    }

    /// <summary>The snapshot position of the store as the API reports it; equal tokens mean nothing changed.</summary>
    public static async Task<string> PositionAsync(ControlPlaneClient client) =>
        (await client.Namespaces.ListAsync(new ListRequest { PageSize = 1 })).ResumeToken;
}
