using ControlPlane.Contracts.V1;
using Orleans.Concurrency;

namespace ControlPlane.Grains.Resources;

/// <summary>The derived endpoint set of one service (key "namespace/name"), written only by its controller.</summary>
[Alias("controlplane.IServiceEndpointsGrain")]
public interface IServiceEndpointsGrain : IGrainWithStringKey
{
    [ReadOnly]
    [Alias("Get")]
    Task<ServiceEndpoints> GetAsync();

    /// <summary>Stores the set if it differs from the stored one.</summary>
    [Alias("Put")]
    Task PutAsync(ServiceEndpoints endpoints);

    [Alias("Delete")]
    Task DeleteAsync();
}
