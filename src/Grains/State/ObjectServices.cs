using ControlPlane.Storage;
using ControlPlane.Storage.GrainStorage;
using Orleans.Storage;

namespace ControlPlane.Grains.State;

/// <summary>What every grain of the control plane is given: its storage provider, read access to other objects, time and settings.</summary>
/// <param name="Storage">The grain storage provider that persists the grain's own object.</param>
/// <param name="Store">
/// Committed state of all objects, for reads across objects (does a namespace exist, is a node
/// ready, what do allocators hold). Never written through.
/// </param>
public sealed record ObjectServices(IGrainStorage Storage, IGrainStore Store, TimeProvider Time, ControlPlaneOptions Options)
{
    public ObjectServices(ObjectStorage storage, DurableStore store, TimeProvider time, ControlPlaneOptions options)
        : this((IGrainStorage)storage, store.Store, time, options)
    {
    }
}
