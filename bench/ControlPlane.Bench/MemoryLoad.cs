using System.Diagnostics;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Bench;

/// <summary>
/// Creates N endpoints (ten nodes, one network) as fast as 64
/// callers go; the script then measures the silo's memory once idle activations are collected.
/// </summary>
internal static class MemoryLoad
{
    public static async Task RunAsync(Uri address, int count)
    {
        using var client = new ControlPlaneClient(address.ToString(), 8);
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "mem" } });
        for (var n = 0; n < 10; n++)
        {
            await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = $"node-{n}" }, Spec = new NodeSpec { UnderlayIp = $"10.255.0.{n + 1}" } });
        }
        await client.Networks.CreateAsync(new Network
        {
            Metadata = new ObjectMeta { Name = "mem" },
            Spec = new NetworkSpec { Vni = 4242, Ipv4Cidr = "10.32.0.0/12", Ipv4BlockPrefixLength = 22 },
        });
        var next = -1;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, 64).Select(async _ =>
        {
            int i;
            while ((i = Interlocked.Increment(ref next)) < count)
            {
                var endpoint = CreateThroughput.Endpoint("mem", $"e-{i}", "mem", "x");
                endpoint.Spec.Node = $"node-{i % 10}";
                endpoint.Spec.Ports.Add(new NamedPort { Name = "http", Port = 8080 });
                await client.Endpoints.CreateAsync(endpoint);
            }
        }));
        Console.WriteLine($"created {count} endpoints in {clock.Elapsed.TotalSeconds:F1} s");
    }
}
