namespace ControlPlane.Cni.Tests;

/// <summary>One two-host bed for the cnitool and protocol tests (each test makes its own networks and workloads).</summary>
public sealed class CniBed : IAsyncLifetime
{
    private uint _vni = 300;

    internal CniCluster Cluster { get; private set; } = null!;

    /// <summary>A fresh VNI (and so a fresh 10.x.0.0/16) per test.</summary>
    internal uint NextVni() => Interlocked.Increment(ref _vni);

    public async Task InitializeAsync() => Cluster = await CniCluster.StartAsync(hosts: 2);

    public async Task DisposeAsync()
    {
        if (Cluster is not null) await Cluster.DisposeAsync();
    }
}

[CollectionDefinition("cni")]
public sealed class CniCollection : ICollectionFixture<CniBed>;
