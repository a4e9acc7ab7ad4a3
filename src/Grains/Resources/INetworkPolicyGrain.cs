using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

public interface INetworkPolicyGrain : IResourceGrain<NetworkPolicy>;
