using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

[Alias("controlplane.IServiceGrain")]
public interface IServiceGrain : IResourceGrain<Service>;
