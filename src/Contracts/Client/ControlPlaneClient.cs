using System.Runtime.CompilerServices;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using Grpc.Net.Client;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// The control plane's API as typed calls (Grpc.Net.Client), to one silo or, given several
/// addresses, to any of them (<see cref="FailoverCallInvoker"/>).
/// </summary>
public sealed class ControlPlaneClient : IDisposable
{
    private readonly IDisposable _owned;
    private readonly ServiceEndpointSets.ServiceEndpointSetsClient _sets;
    private readonly Nodes.NodesClient _nodes;
    private readonly NetworkPolicies.NetworkPoliciesClient _policies;
    private readonly Watch.WatchClient _watch;
    private readonly V1.Convergence.ConvergenceClient _convergence;
    private readonly V1.ClusterSet.ClusterSetClient _clusterSet;

    public ControlPlaneClient(GrpcChannel channel) : this(channel.CreateCallInvoker(), channel)
    {
    }

    private ControlPlaneClient(CallInvoker invoker, IDisposable owned)
    {
        _owned = owned;
        Invoker = invoker;
        Namespaces = new(invoker, "Namespaces", Namespace.Parser, ListNamespacesResponse.Parser);
        Networks = new(invoker, "Networks", Network.Parser, ListNetworksResponse.Parser);
        Nodes = new(invoker, "Nodes", Node.Parser, ListNodesResponse.Parser);
        Endpoints = new(invoker, "Endpoints", Endpoint.Parser, ListEndpointsResponse.Parser);
        Services = new(invoker, "Services", Service.Parser, ListServicesResponse.Parser);
        NetworkPolicies = new(invoker, "NetworkPolicies", NetworkPolicy.Parser, ListNetworkPoliciesResponse.Parser);
        ClusterPeers = new(invoker, "ClusterPeers", ClusterPeer.Parser, ListClusterPeersResponse.Parser);
        ServiceExports = new(invoker, "ServiceExports", ServiceExport.Parser, ListServiceExportsResponse.Parser);
        ServiceImports = new(invoker, "ServiceImports", ServiceImport.Parser, ListServiceImportsResponse.Parser);
        _clusterSet = new(invoker);
        _sets = new(invoker);
        _nodes = new(invoker);
        _policies = new(invoker);
        _watch = new(invoker);
        _convergence = new(invoker);
    }

    public ControlPlaneClient(FailoverCallInvoker silos) : this(silos, silos)
    {
    }

    /// <summary>Calls through <paramref name="interceptor"/> (netctl's retries after a server's pushback) to <paramref name="silos"/>.</summary>
    public ControlPlaneClient(FailoverCallInvoker silos, Grpc.Core.Interceptors.Interceptor interceptor) : this(Grpc.Core.Interceptors.CallInvokerExtensions.Intercept(silos, interceptor), silos)
    {
    }

    /// <summary>"http://host:port", "https://host:port" (with <paramref name="tls"/>), "unix:/path", or several of them separated by commas.</summary>
    public ControlPlaneClient(string address, int maxConnections = 1, ClientTls? tls = null) : this(Connect(address, maxConnections, tls))
    {
    }

    /// <summary>To <paramref name="address"/> as above, every call through <paramref name="interceptor"/>.</summary>
    public ControlPlaneClient(string address, ClientTls? tls, Grpc.Core.Interceptors.Interceptor interceptor) : this(Connect(address, 1, tls), interceptor)
    {
    }

    public ControlPlaneClient(Uri address, int maxConnections = 1) : this(address.ToString(), maxConnections)
    {
    }

    /// <summary>What the calls go through: for other clients of the same silos (health, reflection).</summary>
    public CallInvoker Invoker { get; }

    public ResourceClient<Namespace, ListNamespacesResponse> Namespaces { get; }

    public ResourceClient<Network, ListNetworksResponse> Networks { get; }

    public ResourceClient<Node, ListNodesResponse> Nodes { get; }

    public ResourceClient<Endpoint, ListEndpointsResponse> Endpoints { get; }

    public ResourceClient<Service, ListServicesResponse> Services { get; }

    public ResourceClient<NetworkPolicy, ListNetworkPoliciesResponse> NetworkPolicies { get; }

    public ResourceClient<ClusterPeer, ListClusterPeersResponse> ClusterPeers { get; }

    public ResourceClient<ServiceExport, ListServiceExportsResponse> ServiceExports { get; }

    /// <summary>Read-only: only Get and List are served.</summary>
    public ResourceClient<ServiceImport, ListServiceImportsResponse> ServiceImports { get; }

    /// <summary>The silo's cluster id, ClusterSet and service ranges.</summary>
    public Task<ClusterInfo> GetClusterInfoAsync(CallOptions options = default) =>
        _clusterSet.GetInfoAsync(new ClusterInfoRequest(), options).ResponseAsync;

    public Task<ServiceEndpoints> GetServiceEndpointsAsync(string ns, string name, CallOptions options = default) =>
        _sets.GetAsync(new GetRequest { Namespace = ns, Name = name }, options).ResponseAsync;

    public Task<HeartbeatResponse> HeartbeatAsync(string node, CallOptions options = default, AgentStatus? status = null) =>
        _nodes.HeartbeatAsync(new HeartbeatRequest { Name = node, AgentStatus = status }, options).ResponseAsync;

    public Task<ReportProgrammedResponse> ReportProgrammedAsync(string node, string position, CallOptions options = default) =>
        _nodes.ReportProgrammedAsync(new ReportProgrammedRequest { Name = node, Position = position }, options).ResponseAsync;

    public Task<WaitProgrammedResponse> WaitProgrammedAsync(WaitProgrammedRequest request, CallOptions options = default) =>
        _convergence.WaitProgrammedAsync(request, options).ResponseAsync;

    public Task<ConvergenceStatusResponse> ConvergenceStatusAsync(CallOptions options = default) =>
        _convergence.StatusAsync(new ConvergenceStatusRequest(), options).ResponseAsync;

    public Task<ExplainResponse> ExplainAsync(ExplainRequest request, CallOptions options = default) =>
        _policies.ExplainAsync(request, options).ResponseAsync;

    /// <summary>The events of one Watch call, until the server ends it or the call is cancelled.</summary>
    public async IAsyncEnumerable<WatchEvent> WatchAsync(WatchRequest request, CallOptions options = default,
        [EnumeratorCancellation] CancellationToken cancellationToken = default)
    {
        using var call = _watch.Watch(request, options);
        while (await call.ResponseStream.MoveNext(cancellationToken).ConfigureAwait(false))
        {
            yield return call.ResponseStream.Current;
        }
    }

    public void Dispose() => _owned.Dispose();

    private static FailoverCallInvoker Connect(string address, int maxConnections, ClientTls? tls) =>
        new(FailoverCallInvoker.Split(address), maxConnections, tls);
}
