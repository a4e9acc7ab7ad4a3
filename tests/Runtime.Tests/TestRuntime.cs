using ControlPlane.Runtime.Grains;
using ControlPlane.Runtime.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;

namespace ControlPlane.Runtime.Tests;

/// <summary>A runtime over a real SQLite file in a private temporary directory.</summary>
internal sealed class TestRuntime : IDisposable
{
    private readonly bool _ownsDirectory;

    public TestRuntime(RuntimeOptions? options = null, string? directory = null)
    {
        _ownsDirectory = directory is null;
        Directory = directory ?? Path.Combine(Path.GetTempPath(), "cp-runtime-" + Guid.NewGuid().ToString("N"));
        System.IO.Directory.CreateDirectory(Directory);
        Store = new SqliteGrainStore(Path.Combine(Directory, "test.db"));
        var services = new ServiceCollection().BuildServiceProvider();
        Runtime = new GrainRuntime(Store, options ?? new RuntimeOptions(), services, NullLogger<GrainRuntime>.Instance)
            .Register<ICounterGrain, CounterGrain>("Counter");
    }

    public string Directory { get; }

    public SqliteGrainStore Store { get; }

    public GrainRuntime Runtime { get; }

    public void Dispose()
    {
        Runtime.Dispose();
        Store.Dispose();
        if (_ownsDirectory)
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
    }
}
