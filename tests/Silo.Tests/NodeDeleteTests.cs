using Grpc.Core;
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
}
