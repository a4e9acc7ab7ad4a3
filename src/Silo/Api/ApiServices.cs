using ControlPlane.Contracts.V1;
using ControlPlane.Grains;
using ControlPlane.Grains.Convergence;
using ControlPlane.Grains.Resources;
using ControlPlane.Storage.Changes;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;
using Grpc.Core;
using V1ClusterSet = ControlPlane.Contracts.V1.ClusterSet;

namespace ControlPlane.Silo.Api;

// The resource services generated from proto/controlplane/v1/api.proto, each bound to its grain
// through ResourceHandlers. One class per gRPC service; they hold no logic of their own.

public sealed class NamespacesService(IGrainFactory grains, DurableStore store) : Namespaces.NamespacesBase
{
    private readonly ResourceHandlers<Namespace, INamespaceGrain> _h = new(ResourceKinds.Namespace, grains, store);
    public override Task<Namespace> Create(Namespace request, ServerCallContext context) => _h.CreateAsync(request);
    public override Task<Namespace> Get(GetRequest request, ServerCallContext context) => _h.GetAsync(request);
    public override Task<Namespace> Update(Namespace request, ServerCallContext context) => _h.UpdateAsync(request);
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListNamespacesResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListNamespacesResponse>(request, r => r.Namespaces, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
}

public sealed class NetworksService(IGrainFactory grains, DurableStore store) : Networks.NetworksBase
{
    private readonly ResourceHandlers<Network, INetworkGrain> _h = new(ResourceKinds.Network, grains, store);
    public override Task<Network> Create(Network request, ServerCallContext context) => _h.CreateAsync(request);
    public override Task<Network> Get(GetRequest request, ServerCallContext context) => _h.GetAsync(request);
    public override Task<Network> Update(Network request, ServerCallContext context) => _h.UpdateAsync(request);
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListNetworksResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListNetworksResponse>(request, r => r.Networks, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
}

public sealed class NodesService(IGrainFactory grains, DurableStore store, ControlPlaneOptions options) : Nodes.NodesBase
{
    private readonly ResourceHandlers<Node, INodeGrain> _h = new(ResourceKinds.Node, grains, store);
    public override Task<Node> Create(Node request, ServerCallContext context) => _h.CreateAsync(request);
    public override Task<Node> Get(GetRequest request, ServerCallContext context) => _h.GetAsync(request);
    public override Task<Node> Update(Node request, ServerCallContext context) => _h.UpdateAsync(request);
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListNodesResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListNodesResponse>(request, r => r.Nodes, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));

    public override async Task<HeartbeatResponse> Heartbeat(HeartbeatRequest request, ServerCallContext context)
    {
        var key = ResourceHandlers<Node, INodeGrain>.KeyOf(ResourceKinds.Node, "", request.Name);
        var ready = await grains.Get<INodeGrain>(key).HeartbeatAsync(request.AgentStatus).ConfigureAwait(false);
        return new HeartbeatResponse { Ready = ready, LeaseSeconds = (uint)options.NodeLeaseDuration.TotalSeconds };
    }

    public override async Task<ReportProgrammedResponse> ReportProgrammed(ReportProgrammedRequest request, ServerCallContext context)
    {
        var key = ResourceHandlers<Node, INodeGrain>.KeyOf(ResourceKinds.Node, "", request.Name);
        ControlPlane.Grains.Validation.Names.RequireSubdomain("name", request.Name);
        if (request.Position.Length == 0) throw ControlPlaneException.Invalid("position", "is required: the resume token of the last event the node programmed");
        var position = ResumeToken.Decode(request.Position, store.Partitions.StoreId, store.Partitions.Count, "position");
        await grains.Get<IConvergenceGrain>(IConvergenceGrain.Key).ReportAsync(key, position).ConfigureAwait(false);
        return new ReportProgrammedResponse();
    }
}

public sealed class EndpointsService(IGrainFactory grains, DurableStore store) : Endpoints.EndpointsBase
{
    private readonly ResourceHandlers<Endpoint, IEndpointGrain> _h = new(ResourceKinds.Endpoint, grains, store);
    public override Task<Endpoint> Create(Endpoint request, ServerCallContext context) => _h.CreateAsync(request);
    public override Task<Endpoint> Get(GetRequest request, ServerCallContext context) => _h.GetAsync(request);
    public override Task<Endpoint> Update(Endpoint request, ServerCallContext context) => _h.UpdateAsync(request);
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListEndpointsResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListEndpointsResponse>(request, r => r.Endpoints, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
}

public sealed class ServicesService(IGrainFactory grains, DurableStore store) : Services.ServicesBase
{
    private readonly ResourceHandlers<Service, IServiceGrain> _h = new(ResourceKinds.Service, grains, store);
    public override Task<Service> Create(Service request, ServerCallContext context) => _h.CreateAsync(request);
    public override Task<Service> Get(GetRequest request, ServerCallContext context) => _h.GetAsync(request);
    public override Task<Service> Update(Service request, ServerCallContext context) => _h.UpdateAsync(request);
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListServicesResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListServicesResponse>(request, r => r.Services, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
}

public sealed class NetworkPoliciesService(IGrainFactory grains, DurableStore store) : NetworkPolicies.NetworkPoliciesBase
{
    private readonly ResourceHandlers<NetworkPolicy, INetworkPolicyGrain> _h = new(ResourceKinds.NetworkPolicy, grains, store);
    public override Task<NetworkPolicy> Create(NetworkPolicy request, ServerCallContext context) => _h.CreateAsync(request);
    public override Task<NetworkPolicy> Get(GetRequest request, ServerCallContext context) => _h.GetAsync(request);
    public override Task<NetworkPolicy> Update(NetworkPolicy request, ServerCallContext context) => _h.UpdateAsync(request);
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListNetworkPoliciesResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListNetworkPoliciesResponse>(request, r => r.NetworkPolicies, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
    public override Task<ExplainResponse> Explain(ExplainRequest request, ServerCallContext context) => ExplainApi.ExplainAsync(grains, store, request);
}

public sealed class ServiceEndpointSetsService(IGrainFactory grains, DurableStore store) : ServiceEndpointSets.ServiceEndpointSetsBase
{
    public override Task<ServiceEndpoints> Get(GetRequest request, ServerCallContext context) =>
        grains.Get<IServiceEndpointsGrain>(ResourceHandlers<ServiceEndpoints, IResourceGrain<ServiceEndpoints>>.KeyOf(ResourceKinds.ServiceEndpoints, request.Namespace, request.Name)).GetAsync();

    public override Task<ListServiceEndpointsResponse> List(ListRequest request, ServerCallContext context) =>
        Task.FromResult(ResourceHandlers<ServiceEndpoints, IResourceGrain<ServiceEndpoints>>.List<ListServiceEndpointsResponse>(ResourceKinds.ServiceEndpoints, store, request,
            r => r.ServiceEndpoints, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token)));
}

public sealed class ClusterPeersService(IGrainFactory grains, DurableStore store, ClusterSet.PeerLinks links, Grains.ClusterSet.ClusterSetOptions options, TimeProvider time)
    : ClusterPeers.ClusterPeersBase
{
    private readonly ResourceHandlers<ClusterPeer, IClusterPeerGrain> _h = new(ResourceKinds.ClusterPeer, grains, store);
    public override Task<ClusterPeer> Create(ClusterPeer request, ServerCallContext context) => _h.CreateAsync(Inbound(request));
    public override Task<ClusterPeer> Update(ClusterPeer request, ServerCallContext context) => _h.UpdateAsync(Inbound(request));
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListClusterPeersResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListClusterPeersResponse>(request, r => r.ClusterPeers, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));

    /// <summary>
    /// The stored peer with this silo's link to it (status.connection). Once the link has lost the
    /// peer for longer than the grace period, so that its part of the imports is withdrawn, the
    /// answer no longer claims what this silo stopped using: the peer's nodes are shown not ready
    /// (nothing has been heard from them since; like a Kubernetes node whose kubelet stopped
    /// reporting) and connection.exports is 0 (none of its exports is imported). The stored status
    /// keeps the last state the peer reported (its ranges stay claimed, its networks and nodes stay
    /// routed) so that it is restored at once when the peer returns.
    /// </summary>
    public override async Task<ClusterPeer> Get(GetRequest request, ServerCallContext context)
    {
        var peer = (await _h.GetAsync(request).ConfigureAwait(false)).Clone();
        peer.Status ??= new ClusterPeerStatus();
        var now = time.GetUtcNow();
        var connection = links.Find(peer.Metadata.Name)?.Connection(now, options.PeerGracePeriod)
            ?? new PeerConnection { Message = "this silo has no link to the peer yet" };
        if (!Grains.ClusterSet.PeerJudge.IsJoined(peer))
        {
            // Watched, but nothing of it is imported: not a connected member.
            connection.Connected = false;
            connection.WithdrawTime = null;
            connection.Message = $"not joined: {Grains.ClusterSet.Conditions.Find(peer.Status.Conditions, Grains.ClusterSet.PeerJudge.Joined)?.Message ?? "not read yet"}";
        }
        else if (!connection.Connected && connection.WithdrawTime is { } withdraw && withdraw.ToDateTimeOffset() <= now)
        {
            Withdrawn(peer.Status, connection);
        }
        peer.Status.Connection = connection;
        return peer;
    }

    /// <summary>How a peer whose part of the imports was withdrawn is shown: its nodes not ready, no export in use, and why.</summary>
    internal static void Withdrawn(ClusterPeerStatus status, PeerConnection connection)
    {
        foreach (var node in status.Nodes)
        {
            node.Ready = false;
        }
        connection.Exports = 0;
        var why = connection.Message.Length > 0 ? $"{connection.Message}; " : string.Empty;
        connection.Message = $"{why}lost for longer than ClusterSet:PeerGracePeriod, its part of the imports was withdrawn at "
            + $"{connection.WithdrawTime.ToDateTimeOffset():u} (it is restored when the peer answers again)";
    }

    // status.connection is computed on Get, never stored.
    private static ClusterPeer Inbound(ClusterPeer request)
    {
        if (request.Status is not null) request.Status.Connection = null;
        return request;
    }
}

public sealed class ServiceExportsService(IGrainFactory grains, DurableStore store) : ServiceExports.ServiceExportsBase
{
    private readonly ResourceHandlers<ServiceExport, IServiceExportGrain> _h = new(ResourceKinds.ServiceExport, grains, store);
    public override Task<ServiceExport> Create(ServiceExport request, ServerCallContext context) => _h.CreateAsync(request);
    public override Task<ServiceExport> Get(GetRequest request, ServerCallContext context) => _h.GetAsync(request);
    public override Task<ServiceExport> Update(ServiceExport request, ServerCallContext context) => _h.UpdateAsync(request);
    public override Task<DeleteResponse> Delete(DeleteRequest request, ServerCallContext context) => _h.DeleteAsync(request);
    public override Task<ListServiceExportsResponse> List(ListRequest request, ServerCallContext context) =>
        _h.ListAsync<ListServiceExportsResponse>(request, r => r.ServiceExports, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token));
}

public sealed class ServiceImportsService(IGrainFactory grains, DurableStore store) : ServiceImports.ServiceImportsBase
{
    public override Task<ServiceImport> Get(GetRequest request, ServerCallContext context) =>
        grains.Get<IServiceImportGrain>(ResourceHandlers<ServiceImport, IResourceGrain<ServiceImport>>.KeyOf(ResourceKinds.ServiceImport, request.Namespace, request.Name)).GetAsync();

    public override Task<ListServiceImportsResponse> List(ListRequest request, ServerCallContext context) =>
        Task.FromResult(ResourceHandlers<ServiceImport, IResourceGrain<ServiceImport>>.List<ListServiceImportsResponse>(ResourceKinds.ServiceImport, store, request,
            r => r.ServiceImports, (r, next, token) => (r.NextPageToken, r.ResumeToken) = (next, token)));
}

public sealed class ClusterSetService(Grains.ClusterSet.ClusterSetOptions options, ControlPlaneOptions controlPlane, DurableStore store) : V1ClusterSet.ClusterSetBase
{
    public override Task<ClusterInfo> GetInfo(ClusterInfoRequest request, ServerCallContext context)
    {
        var info = new ClusterInfo { ClusterId = options.ClusterId, ClusterSet = options.Name, StoreId = store.Partitions.StoreId.ToString("x16", System.Globalization.CultureInfo.InvariantCulture) };
        info.ServiceRanges.Add(new[] { controlPlane.ServiceIpv4Cidr, controlPlane.ServiceIpv6Cidr }.Where(r => r.Length > 0));
        return Task.FromResult(info);
    }
}
