using ControlPlane.Contracts.V1;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Grains.Resources;

/// <summary>The derived endpoint set of one service (key "namespace/name"), written only by its controller.</summary>
public interface IServiceEndpointsGrain : IGrain
{
    [ReadOnly]
    Task<ServiceEndpoints> GetAsync();

    /// <summary>Stores the set if it differs from the stored one.</summary>
    Task PutAsync(ServiceEndpoints endpoints);

    Task DeleteAsync();
}
