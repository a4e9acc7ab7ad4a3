using Grpc.Core;
using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// A node that still hosts endpoints cannot be deleted (before and after a restart); once it is
/// empty, deleting it gives its address blocks back to the network for other nodes.
/// </summary>
public sealed class NodeDeleteTests : IDisposable
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "cp-nodedel-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }

    [Fact]
    public async Task NodeWithEndpoints_IsKept_AcrossARestart_AndAnEmptyNodesBlocksGoBack()
    {
        var silo = await SiloProcess.StartAsync(_data);
        try
        {
            await SeedAsync(silo.Client, block: 26);
            var pod = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "pod-1", "net", "node-a"));
            Assert.Equal("10.20.0.2", pod.Status.Ips[0]);
            var before = await PositionAsync(silo.Client);

            var refused = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Nodes.DeleteAsync("", "node-a"));
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.Contains("ns/pod-1", refused.Status.Detail);
            Assert.Equal(before, await PositionAsync(silo.Client));

            await silo.TerminateAsync();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(_data);

            refused = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Nodes.DeleteAsync("", "node-a"));
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.True((await silo.Client.Endpoints.GetAsync("ns", "pod-1")).Status.NodeReady);

            await silo.Client.Endpoints.DeleteAsync("ns", "pod-1");
            await silo.Client.Nodes.DeleteAsync("", "node-a");
            Assert.DoesNotContain((await silo.Client.Networks.GetAsync("", "net")).Status.Blocks, b => b.Node == "node-a");

            // The block node-a had is the lowest free one again: the next node is given it.
            await silo.Client.Nodes.CreateAsync(Node("node-b", "10.255.0.2"));
            var next = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "pod-2", "net", "node-b"));
            Assert.Equal("10.20.0.2", next.Status.Ips[0]);

            await silo.TerminateAsync();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(_data);
            var blocks = (await silo.Client.Networks.GetAsync("", "net")).Status.Blocks;
            Assert.Equal(["node-b"], blocks.Select(b => b.Node));
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }

    /// <summary>
    /// A delete of a namespace or node racing creates that refer to it (what an orchestrator
    /// tearing a namespace down while a controller still creates in it does): never both, and
    /// after a kill -9 and a restart no object refers to a namespace or node that is gone.
    /// </summary>
    [Fact]
    public async Task DeletesRacingCreatesThatReferToWhatTheyDelete_NeverBothSucceed_AcrossARestart()
    {
        var silo = await SiloProcess.StartAsync(_data);
        try
        {
            await SeedAsync(silo.Client);
            var orphans = new List<string>();
            for (var round = 0; round < 25; round++)
            {
                var (ns, node) = ($"tmp-{round}", $"node-x{round}");
                await silo.Client.Namespaces.CreateAsync(Namespace(ns));
                await silo.Client.Nodes.CreateAsync(Node(node, $"10.255.1.{round + 1}"));
                var calls = new (string What, Func<Task> Call)[]
                {
                    ("namespace delete", () => silo.Client.Namespaces.DeleteAsync("", ns)),
                    ("node delete", () => silo.Client.Nodes.DeleteAsync("", node)),
                    ("service", () => silo.Client.Services.CreateAsync(Service(ns, "web", "net"))),
                    ("policy", () => silo.Client.NetworkPolicies.CreateAsync(new NetworkPolicy { Metadata = new ObjectMeta { Namespace = ns, Name = "np" }, Spec = new NetworkPolicySpec() })),
                    ("endpoint in the namespace", () => silo.Client.Endpoints.CreateAsync(Endpoint(ns, "ep", "net", "node-a"))),
                    ("endpoint on the node", () => silo.Client.Endpoints.CreateAsync(Endpoint("ns", $"on-{round}", "net", node))),
                };
                var outcomes = await Task.WhenAll(calls.Select(async c =>
                {
                    try
                    {
                        await c.Call();
                        return StatusCode.OK;
                    }
                    catch (RpcException e)
                    {
                        return e.StatusCode;
                    }
                }));
                Assert.All(outcomes, o => Assert.True(o is StatusCode.OK or StatusCode.NotFound or StatusCode.FailedPrecondition, $"round {round}: {string.Join(", ", outcomes)}"));
                if (outcomes[0] == StatusCode.OK) orphans.AddRange(calls.Skip(2).Take(3).Where((_, i) => outcomes[2 + i] == StatusCode.OK).Select(c => $"round {round}: {c.What} and the namespace delete"));
                if (outcomes[1] == StatusCode.OK && outcomes[5] == StatusCode.OK) orphans.Add($"round {round}: endpoint and the node delete");
            }
            Assert.Empty(orphans);
            // Made just before the kill: what it refers to still cannot go after the restart.
            await silo.Client.Namespaces.CreateAsync(Namespace("last"));
            await silo.Client.Endpoints.CreateAsync(Endpoint("last", "ep", "net", "node-a"));

            silo.Kill();
            await silo.DisposeAsync();
            silo = await SiloProcess.StartAsync(_data);
            var namespaces = (await silo.Client.Namespaces.ListAsync(new ListRequest())).Namespaces.Select(n => n.Metadata.Name).ToHashSet();
            var nodes = (await silo.Client.Nodes.ListAsync(new ListRequest())).Nodes.Select(n => n.Metadata.Name).ToHashSet();
            var endpoints = (await silo.Client.Endpoints.ListAsync(new ListRequest { PageSize = 1000 })).Endpoints;
            Assert.All(endpoints, e => Assert.True(namespaces.Contains(e.Metadata.Namespace) && nodes.Contains(e.Spec.Node), $"{e.Metadata.Namespace}/{e.Metadata.Name} on {e.Spec.Node}"));
            Assert.All((await silo.Client.Services.ListAsync(new ListRequest())).Services, s => Assert.Contains(s.Metadata.Namespace, namespaces));
            Assert.All((await silo.Client.NetworkPolicies.ListAsync(new ListRequest())).NetworkPolicies, p => Assert.Contains(p.Metadata.Namespace, namespaces));
            var refused = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Namespaces.DeleteAsync("", "last"));
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.Contains("last/ep", refused.Status.Detail);
            await silo.Client.Endpoints.DeleteAsync("last", "ep");
            await silo.Client.Namespaces.DeleteAsync("", "last");

            // A service refers to its network the same way.
            await silo.Client.Networks.CreateAsync(Network("net-2", 102, "10.30.0.0/16"));
            await silo.Client.Services.CreateAsync(Service("ns", "on-net-2", "net-2"));
            refused = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Networks.DeleteAsync("", "net-2"));
            Assert.Equal(StatusCode.FailedPrecondition, refused.StatusCode);
            Assert.Contains("ns/on-net-2", refused.Status.Detail);
            await silo.Client.Services.DeleteAsync("ns", "on-net-2");
            await silo.Client.Networks.DeleteAsync("", "net-2");
        }
        finally
        {
            await silo.DisposeAsync();
        }
    }
}
