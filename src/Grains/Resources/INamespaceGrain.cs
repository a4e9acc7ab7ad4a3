using ControlPlane.Contracts.V1;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Grains.Resources;

public interface INamespaceGrain : IResourceGrain<Namespace>
{
    [ReadOnly]
    Task<bool> ExistsAsync();
}
