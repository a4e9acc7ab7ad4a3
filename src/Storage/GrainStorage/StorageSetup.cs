using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.Runtime.Hosting;

namespace ControlPlane.Storage.GrainStorage;

/// <summary>Adds the control plane's storage to a silo: the store, its committer and hub, and the grain storage provider.</summary>
public static class StorageSetup
{
    public static ISiloBuilder AddControlPlaneStorage(this ISiloBuilder silo, Func<IServiceProvider, IGrainStore> store, StoreOptions options)
    {
        silo.Services.AddSingleton(store);
        silo.Services.AddSingleton(options);
        silo.Services.AddSingleton<DurableStore>();
        silo.Services.AddSingleton<ObjectStorage>();
        silo.Services.AddGrainStorage(ObjectStorage.Name, (services, _) => services.GetRequiredService<ObjectStorage>());
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>, StoreOpener>();
        return silo;
    }

    /// <summary>
    /// Opens the store while the silo starts, before any grain activates: a first activation must
    /// not wait on the store's opening (its schema, its partitions) while others queue behind it.
    /// </summary>
    private sealed class StoreOpener(IServiceProvider services) : ILifecycleParticipant<ISiloLifecycle>
    {
        public void Participate(ISiloLifecycle lifecycle) =>
            lifecycle.Subscribe(nameof(StoreOpener), ServiceLifecycleStage.RuntimeInitialize, _ =>
                Task.Run(() => services.GetRequiredService<DurableStore>()));
    }
}
