using ControlPlane.Grains.Resources;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Grains;

/// <summary>Registers every grain class of the control plane with a runtime.</summary>
public static class GrainCatalog
{
    public static GrainRuntime RegisterControlPlaneGrains(this GrainRuntime runtime) => runtime
        .Register<INamespaceGrain, NamespaceGrain>(Kinds.Namespace)
        .Register<INetworkGrain, NetworkGrain>(Kinds.Network)
        .Register<INodeGrain, NodeGrain>(Kinds.Node)
        .Register<IEndpointGrain, EndpointGrain>(Kinds.Endpoint)
        .Register<IServiceGrain, ServiceGrain>(Kinds.Service)
        .Register<INetworkPolicyGrain, NetworkPolicyGrain>(Kinds.NetworkPolicy)
        .Register<IServiceEndpointsGrain, ServiceEndpointsGrain>(Kinds.ServiceEndpoints)
        .Register<INetworkRegistryGrain, NetworkRegistryGrain>(Kinds.NetworkRegistry)
        .Register<IServiceIpAllocatorGrain, ServiceIpAllocatorGrain>(Kinds.ServiceIpAllocator);
}
