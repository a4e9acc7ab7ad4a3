namespace ControlPlane.NodeAgent.Tests;

/// <summary>A cluster of hosts with servers listening in its workload namespaces; disposing stops both.</summary>
internal class ServedCluster : IAsyncDisposable
{
    public required Cluster Cluster { get; init; }

    public PodSockets Servers { get; } = new();

    /// <summary>The network namespace path of workload <paramref name="name"/>.</summary>
    public string Pod(string name) => "/var/run/netns/" + Cluster.Pod(name);

    public async ValueTask DisposeAsync()
    {
        Servers.Dispose();
        await Cluster.DisposeAsync();
    }
}
