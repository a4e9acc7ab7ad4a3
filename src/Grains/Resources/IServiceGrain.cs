using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

public interface IServiceGrain : IResourceGrain<Service>;
