using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Bench;

/// <summary>
/// One benchmark run's namespace, a network of the same name (a /12 in /20 blocks: room for every
/// endpoint a run makes, outside the service range 10.96/12) and its node node-RUN, whose underlay
/// address is its own (two nodes never share one).
/// </summary>
internal sealed record BenchNamespace(string Run, string Name)
{
    public string Node => $"node-{Run}";

    public static async Task<BenchNamespace> CreateAsync(ControlPlaneClient client, string prefix)
    {
        var run = Guid.NewGuid().ToString("N")[..6];
        var created = new BenchNamespace(run, $"{prefix}-{run}");
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = created.Name } });
        await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = created.Node }, Spec = new NodeSpec { UnderlayIp = $"10.255.{Random.Shared.Next(256)}.{Random.Shared.Next(1, 255)}" } });
        await client.Networks.CreateAsync(new Network
        {
            Metadata = new ObjectMeta { Name = created.Name },
            Spec = new NetworkSpec { Vni = (uint)Random.Shared.Next(1000, 1 << 24), Ipv4Cidr = $"10.{Random.Shared.Next(1, 6) * 16}.0.0/12", Ipv4BlockPrefixLength = 20 },
        });
        return created;
    }
}
