using ControlPlane.Storage.GrainStorage;
using ControlPlane.Storage.Sqlite;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Configuration;
using Orleans.Runtime.Hosting;
using Orleans.TestingHost;

namespace ControlPlane.Storage.Tests;

/// <summary>
/// An Orleans cluster of one silo (Orleans' TestingHost, in process) whose grain storage is the
/// control plane's provider over a real SQLite file in a private directory. The client reaches
/// the silo through a gateway, so calls and exceptions are serialized as between processes.
/// </summary>
internal sealed class StoreCluster : IAsyncDisposable
{
    private readonly InProcessTestCluster _cluster;
    private readonly bool _ownsDirectory;

    private StoreCluster(InProcessTestCluster cluster, string directory, bool ownsDirectory)
    {
        _cluster = cluster;
        Directory = directory;
        _ownsDirectory = ownsDirectory;
    }

    public string Directory { get; }

    public string DatabasePath => Path.Combine(Directory, "test.db");

    /// <summary>The PostgreSQL connection string, when the cluster runs on PostgreSQL.</summary>
    public string? Database { get; private init; }

    public IClusterClient Client => _cluster.Client;

    public DurableStore Store => _cluster.GetSiloServiceProvider().GetRequiredService<DurableStore>();

    public ICounterGrain Counter(string key) => Client.GetGrain<ICounterGrain>(key);

    /// <summary>
    /// A cluster on a store: "sqlite" (a file in <paramref name="directory"/>) or "postgres" (the
    /// database <paramref name="database"/> of the private server, a new one when null).
    /// </summary>
    public static async Task<StoreCluster> StartAsync(string? directory = null, int partitions = 16, string provider = "sqlite", string? database = null, string siloId = "test")
    {
        var owns = directory is null;
        directory ??= Path.Combine(Path.GetTempPath(), "cp-store-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "test.db");
        if (provider == "postgres")
        {
            database ??= ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase();
        }
        var builder = new InProcessTestClusterBuilder(1);
        builder.ConfigureSilo((_, silo) =>
        {
            silo.AddControlPlaneStorage(_ => provider == "postgres"
                ? new ControlPlane.Storage.Postgres.PostgresGrainStore(database!)
                : new SqliteGrainStore(path), new StoreOptions { Partitions = partitions, SiloId = siloId });
            silo.Configure<GrainCollectionOptions>(o => (o.CollectionAge, o.CollectionQuantum) = (TimeSpan.FromMinutes(10), TimeSpan.FromMinutes(1)));
        });
        var cluster = builder.Build();
        await cluster.DeployAsync();
        return new StoreCluster(cluster, directory, owns) { Database = database };
    }

    /// <summary>Deactivates a grain now, as idle collection would.</summary>
    public Task DeactivateAsync(IAddressable grain) => _cluster.DeactivateAsync(grain);

    public async ValueTask DisposeAsync()
    {
        await _cluster.StopAllSilosAsync();
        await _cluster.DisposeAsync();
        if (_ownsDirectory)
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
