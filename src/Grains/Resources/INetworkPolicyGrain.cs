using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

[Alias("controlplane.INetworkPolicyGrain")]
public interface INetworkPolicyGrain : IResourceGrain<NetworkPolicy>;
