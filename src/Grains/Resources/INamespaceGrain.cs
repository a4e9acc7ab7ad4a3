using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

[Alias("controlplane.INamespaceGrain")]
public interface INamespaceGrain : IResourceGrain<Namespace>;
