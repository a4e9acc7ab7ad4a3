using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains;
using ControlPlane.Grains.Resources;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Silo.Api;

/// <summary>Every gRPC method of the control plane, bound to the runtime.</summary>
public static class ApiMap
{
    public static void MapAll(GrpcServer server, GrainRuntime runtime, ControlPlaneOptions options)
    {
        var api = new ResourceApi(server, runtime);
        api.MapCrud<Namespace, INamespaceGrain, ListNamespacesResponse>("Namespaces", ResourceKinds.Namespace,
            r => r.Namespaces, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
        api.MapCrud<Network, INetworkGrain, ListNetworksResponse>("Networks", ResourceKinds.Network,
            r => r.Networks, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
        api.MapCrud<Node, INodeGrain, ListNodesResponse>("Nodes", ResourceKinds.Node,
            r => r.Nodes, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
        api.MapCrud<Endpoint, IEndpointGrain, ListEndpointsResponse>("Endpoints", ResourceKinds.Endpoint,
            r => r.Endpoints, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
        api.MapCrud<Service, IServiceGrain, ListServicesResponse>("Services", ResourceKinds.Service,
            r => r.Services, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
        api.MapCrud<NetworkPolicy, INetworkPolicyGrain, ListNetworkPoliciesResponse>("NetworkPolicies", ResourceKinds.NetworkPolicy,
            r => r.NetworkPolicies, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
        api.MapReads<ServiceEndpoints, ListServiceEndpointsResponse>("ServiceEndpointSets", ResourceKinds.ServiceEndpoints,
            key => runtime.GetGrain<IServiceEndpointsGrain>(key).GetAsync(),
            r => r.ServiceEndpoints, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
        server.AddUnary("/controlplane.v1.Nodes/Heartbeat", HeartbeatRequest.Parser, async (request, _) =>
        {
            if (request.Name.Length == 0 || request.Name.Contains('/'))
            {
                throw Runtime.Errors.ControlPlaneException.Invalid("name", "is required");
            }
            var ready = await runtime.GetGrain<INodeGrain>(request.Name).HeartbeatAsync(request.AgentStatus).ConfigureAwait(false);
            return new HeartbeatResponse { Ready = ready, LeaseSeconds = (uint)options.NodeLeaseDuration.TotalSeconds };
        });
        server.AddUnary("/controlplane.v1.NetworkPolicies/Explain", ExplainRequest.Parser, (request, _) => ExplainApi.ExplainAsync(runtime, request));
    }
}
