using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Convergence;
using ControlPlane.Grains.Resources;
using ControlPlane.Silo.Api;
using ControlPlane.Storage.GrainStorage;

namespace ControlPlane.Silo.Convergence;

/// <summary>How many counted nodes have programmed one revision of one object.</summary>
public static class Coverage
{
    public static Task<ProgrammedStatus> OfAsync(IGrainFactory grains, DurableStore store, IResourceKind kind, string key, long revision) =>
        grains.Get<IConvergenceGrain>(IConvergenceGrain.Key).CoverageAsync(store.PartitionOf(kind.Name, key), revision);
}
