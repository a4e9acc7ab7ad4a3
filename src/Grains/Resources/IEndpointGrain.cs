using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

public interface IEndpointGrain : IResourceGrain<Endpoint>
{
    /// <summary>Records whether the endpoint's node holds a current lease (effective readiness follows).</summary>
    Task SetNodeReadyAsync(bool ready);
}
