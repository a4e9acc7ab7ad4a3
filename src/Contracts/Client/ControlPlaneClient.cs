using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Client;

/// <summary>The control plane's API as typed calls, over one multiplexed HTTP/2 connection pool.</summary>
public sealed class ControlPlaneClient(GrpcClient client) : IDisposable
{
    public ControlPlaneClient(Uri address, int connections = 1) : this(new GrpcClient(address, connections))
    {
    }

    public GrpcClient Channel { get; } = client;

    public ResourceClient<Namespace, ListNamespacesResponse> Namespaces { get; } = new(client, "Namespaces", Namespace.Parser, ListNamespacesResponse.Parser);

    public ResourceClient<Network, ListNetworksResponse> Networks { get; } = new(client, "Networks", Network.Parser, ListNetworksResponse.Parser);

    public ResourceClient<Node, ListNodesResponse> Nodes { get; } = new(client, "Nodes", Node.Parser, ListNodesResponse.Parser);

    public ResourceClient<Endpoint, ListEndpointsResponse> Endpoints { get; } = new(client, "Endpoints", Endpoint.Parser, ListEndpointsResponse.Parser);

    public ResourceClient<Service, ListServicesResponse> Services { get; } = new(client, "Services", Service.Parser, ListServicesResponse.Parser);

    public ResourceClient<NetworkPolicy, ListNetworkPoliciesResponse> NetworkPolicies { get; } = new(client, "NetworkPolicies", NetworkPolicy.Parser, ListNetworkPoliciesResponse.Parser);

    public Task<ServiceEndpoints> GetServiceEndpointsAsync(string ns, string name, CallOptions options = default) =>
        Channel.UnaryAsync("/controlplane.v1.ServiceEndpointSets/Get", new GetRequest { Namespace = ns, Name = name }, ServiceEndpoints.Parser, options);

    public Task<HeartbeatResponse> HeartbeatAsync(string node, CallOptions options = default, AgentStatus? status = null) =>
        Channel.UnaryAsync("/controlplane.v1.Nodes/Heartbeat", new HeartbeatRequest { Name = node, AgentStatus = status }, HeartbeatResponse.Parser, options);

    public Task<ExplainResponse> ExplainAsync(ExplainRequest request, CallOptions options = default) =>
        Channel.UnaryAsync("/controlplane.v1.NetworkPolicies/Explain", request, ExplainResponse.Parser, options);

    public IAsyncEnumerable<WatchEvent> WatchAsync(WatchRequest request, CallOptions options = default) =>
        Channel.ServerStreamingAsync("/controlplane.v1.Watch/Watch", request, WatchEvent.Parser, options);

    public void Dispose() => Channel.Dispose();
}
