using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

[Alias("controlplane.IEndpointGrain")]
public interface IEndpointGrain : IResourceGrain<Endpoint>
{
    /// <summary>Records whether the endpoint's node holds a current lease (effective readiness follows).</summary>
    [Alias("SetNodeReady")]
    Task SetNodeReadyAsync(bool ready);
}
