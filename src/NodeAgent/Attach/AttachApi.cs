using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.NodeAgent.Dataplane;
using ControlPlane.NodeAgent.Sync;
using Grpc.Core;

namespace ControlPlane.NodeAgent.Attach;

/// <summary>
/// controlplane.v1.Agent on the node's unix socket. Attach creates the endpoint through the
/// control plane (on this node), wires its veth and returns its addresses; Detach reverses it.
/// Both are idempotent. A wiring failure after the endpoint was created deletes it again. An
/// attach that names its container records it on the endpoint (<see cref="AttachmentLabels"/>),
/// and from then on that endpoint is the container's: another container's attach or detach of the
/// same name does not touch it. List and Status serve the CNI plugin's GC, CHECK and STATUS.
/// </summary>
public sealed class AttachApi(ControlPlaneClient client, AgentOptions options, PendingAttachments pending, OrphanedAttachments orphans, Lease.NodeLease lease, WatchSync sync) : Agent.AgentBase
{
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(10);

    public override Task<AttachResponse> Attach(AttachRequest request, ServerCallContext context) => Upstream(AttachAsync(request, context.CancellationToken));

    public override Task<DetachResponse> Detach(DetachRequest request, ServerCallContext context) => Upstream(DetachAsync(request, context.CancellationToken));

    public override Task<ListAttachmentsResponse> List(ListAttachmentsRequest request, ServerCallContext context) => Upstream(ListAsync(request, context.CancellationToken));

    public override Task<AgentStatusResponse> Status(AgentStatusRequest request, ServerCallContext context) => StatusAsync(request, context.CancellationToken);

    private async Task<AttachResponse> AttachAsync(AttachRequest request, CancellationToken cancellationToken)
    {
        if (request.NetnsPath.Length == 0 || !File.Exists(request.NetnsPath))
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"netns_path: '{request.NetnsPath}' does not exist as the node agent sees it (the runtime and the agent must share the mount namespace it is mounted in)"));
        if (!NetworkNamespace.IsNetworkNamespace(request.NetnsPath))
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"netns_path: '{request.NetnsPath}' is not a network namespace as the node agent sees it (the runtime and the agent must share the mount namespace it is mounted in)"));
        if (NetworkNamespace.IsOwn(request.NetnsPath))
            throw new RpcException(new Status(StatusCode.InvalidArgument,
                $"netns_path: '{request.NetnsPath}' is the node agent's own network namespace (the host's): a workload is attached in a namespace of its own"));
        if (request.InterfaceName.Length is 0 or > 15 || request.InterfaceName.Contains('/'))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"interface_name: '{request.InterfaceName}' is not a Linux interface name"));
        await WaitRegisteredAsync(cancellationToken);
        var call = Calls.Within(CallTimeout, cancellationToken);
        // Before anything is made: a workload on this network through another interface already
        // would lose its routes to it to this one. (A network that does not exist is refused by the create below.)
        var requested = await NetworkAsync(request.Network, call);
        if (requested is not null
            && await Task.Run(() => EndpointWiring.RoutedElsewhere(request.NetnsPath, request.InterfaceName, Prefixes(requested)), cancellationToken) is { } other)
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"interface_name: the workload is on network '{request.Network}' through {other} already; a workload takes one interface per network"));
        var endpoint = new Endpoint
        {
            Metadata = new ObjectMeta { Namespace = request.Namespace, Name = request.Name },
            // Ready once its interface is wired (below): until then no service sends it traffic
            // and DNS does not name it, and an attach cut short leaves it so.
            Spec = new EndpointSpec { Network = request.Network, Node = options.NodeName, Ready = false, Hostname = request.Hostname, Subdomain = request.Subdomain },
        };
        endpoint.Metadata.Labels.Add(request.Labels);
        if (request.ContainerId.Length > 0)
        {
            foreach (var (label, value) in AttachmentLabels.For(request.ContainerId, request.InterfaceName)) endpoint.Metadata.Labels[label] = value;
        }
        endpoint.Spec.Ports.Add(request.Ports);
        endpoint.Spec.Ips.Add(request.Ips);
        var created = false;
        try
        {
            endpoint = await client.Endpoints.CreateAsync(endpoint, call);
            created = true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            // Either the endpoint exists (an attach repeated) or a requested address is held by
            // another endpoint: only the first has an endpoint of this name to read.
            endpoint = await ExistingAsync(request, e, call);
        }
        var key = $"{request.Namespace}/{request.Name}";
        // The endpoint is on the requested network (an existing one on another is refused above), read before it was made when it existed then.
        var network = requested ?? await client.Networks.GetAsync("", endpoint.Spec.Network, call);
        var prefixes = Prefixes(network);
        var host = EndpointWiring.HostSide.Of(key, endpoint.Status, Names.Table(network.Spec.Vni));
        var wiring = new EndpointWiring.Wiring(host.HostInterface, request.InterfaceName, host.Ips, host.Mac, host.Gateways, (int)endpoint.Status.Mtu, host.Table, prefixes);
        // Without a container to tell a new ADD of the same workload from another caller, an
        // attach does not take a live workload's interface away from it.
        if (!created && request.ContainerId.Length == 0
            && await Task.Run(() => EndpointWiring.JoinsAnother(request.NetnsPath, wiring.HostInterface, request.InterfaceName), cancellationToken))
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"endpoint {key} is attached in another network namespace, whose workload still has its interface; detach it first (or give container_id, for a container added again)"));
        pending.Add(wiring.HostInterface, key);
        EndpointWiring.Connected connected;
        try
        {
            using (pending.Wiring(wiring.HostInterface))
            {
                connected = await Task.Run(() => EndpointWiring.Connect(request.NetnsPath, wiring, options.RouteProtocol), cancellationToken);
            }
        }
        catch (Exception e) when (e is InterfaceTakenException or NetlinkException or InvalidOperationException or IOException)
        {
            pending.Remove(wiring.HostInterface);
            if (created)
            {
                EndpointWiring.Disconnect(wiring.HostInterface, options.RouteProtocol);
                await client.Endpoints.DeleteAsync(request.Namespace, request.Name, options: call);
            }
            throw e is InterfaceTakenException
                ? new RpcException(new Status(StatusCode.FailedPrecondition, $"interface_name: {e.Message}"))
                : new RpcException(new Status(StatusCode.Internal, $"wiring {key} failed: {e.Message}"));
        }
        orphans.Wired(key, endpoint.Metadata.Labels.GetValueOrDefault(AttachmentLabels.Attachment, ""));
        // The endpoint this attach made, or one an attach for this container began and did not finish.
        if (!endpoint.Spec.Ready && (created || (request.ContainerId.Length > 0 && IsFor(endpoint, request.ContainerId, request.InterfaceName))))
        {
            endpoint = await MarkReadyAsync(endpoint, call);
        }
        var response = new AttachResponse
        {
            Mac = endpoint.Status.Mac,
            Ipv4Gateway = endpoint.Status.Ipv4Gateway,
            Ipv6Gateway = endpoint.Status.Ipv6Gateway,
            Mtu = endpoint.Status.Mtu,
            InterfaceName = request.InterfaceName,
            Endpoint = endpoint,
            HostInterface = wiring.HostInterface,
            HostMac = Colons(connected.HostMac),
        };
        response.Ips.Add(endpoint.Status.Ips);
        response.Routes.Add(connected.Routes);
        return response;
    }

    /// <summary>Sets the endpoint ready, at the revision read (read again if something else changed it meanwhile: its status, the node's readiness).</summary>
    private async Task<Endpoint> MarkReadyAsync(Endpoint endpoint, CallOptions call)
    {
        for (var attempt = 1; ; attempt++)
        {
            var ready = endpoint.Clone();
            ready.Spec.Ready = true;
            try
            {
                return await client.Endpoints.UpdateAsync(ready, call);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted && attempt < 3)
            {
                endpoint = await client.Endpoints.GetAsync(endpoint.Metadata.Namespace, endpoint.Metadata.Name, call);
                if (endpoint.Spec.Ready) return endpoint;
            }
        }
    }

    private static List<(IPAddress Prefix, int Length)> Prefixes(Network network) =>
        [.. new[] { network.Spec.Ipv4Cidr, network.Spec.Ipv6Cidr }.Where(c => c.Length > 0).Select(c => IPNetwork.Parse(c)).Select(n => (n.BaseAddress, n.PrefixLength))];

    /// <summary>The network <paramref name="name"/>, or null when there is no such network.</summary>
    private async Task<Network?> NetworkAsync(string name, CallOptions call)
    {
        try
        {
            return name.Length == 0 ? null : await client.Networks.GetAsync("", name, call);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound or StatusCode.InvalidArgument)
        {
            return null;
        }
    }

    private async Task<Endpoint> ExistingAsync(AttachRequest request, RpcException refused, CallOptions call)
    {
        Endpoint endpoint;
        try
        {
            endpoint = await client.Endpoints.GetAsync(request.Namespace, request.Name, call);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            throw refused;
        }
        if (endpoint.Spec.Node != options.NodeName || endpoint.Spec.Network != request.Network)
            throw new RpcException(new Status(StatusCode.FailedPrecondition, $"endpoint {request.Namespace}/{request.Name} exists on node '{endpoint.Spec.Node}', network '{endpoint.Spec.Network}'"));
        if (request.ContainerId.Length > 0 && !IsFor(endpoint, request.ContainerId, request.InterfaceName))
        {
            var holder = endpoint.Metadata.Labels.TryGetValue(AttachmentLabels.ContainerId, out var id) ? $"container {id}" : "no container";
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"endpoint {request.Namespace}/{request.Name} exists, attached for {holder}; detach it first"));
        }
        // The same container and interface through another CNI network configuration is another
        // attachment (the spec's key includes the network's name), not this one repeated.
        if (request.Labels.TryGetValue(AttachmentLabels.CniNetwork, out var configuration)
            && endpoint.Metadata.Labels.TryGetValue(AttachmentLabels.CniNetwork, out var attachedThrough) && attachedThrough != configuration)
        {
            throw new RpcException(new Status(StatusCode.FailedPrecondition,
                $"endpoint {request.Namespace}/{request.Name} exists, attached through network configuration '{attachedThrough}'; detach it through that configuration first"));
        }
        return endpoint;
    }

    private async Task<DetachResponse> DetachAsync(DetachRequest request, CancellationToken cancellationToken)
    {
        var call = Calls.Within(CallTimeout, cancellationToken);
        var veth = Names.EndpointVeth($"{request.Namespace}/{request.Name}");
        var conditional = request.ContainerId.Length > 0 || request.Etag.Length > 0 || request.Labels.Count > 0;
        var etag = request.Etag;
        if (conditional)
        {
            try
            {
                var endpoint = await client.Endpoints.GetAsync(request.Namespace, request.Name, call);
                if (request.ContainerId.Length > 0 && !IsFor(endpoint, request.ContainerId, request.InterfaceName))
                {
                    return await DetachByContainerAsync(request, cancellationToken);
                }
                if ((request.Etag.Length > 0 && endpoint.Metadata.Etag != request.Etag) || !Carries(endpoint, request.Labels))
                {
                    return new DetachResponse { Detached = false };
                }
                etag = endpoint.Metadata.Etag;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                // Gone already. An interface left behind (a detach that failed half-way) is the
                // reconciler's to sweep: removing it here could hit the pair of a new endpoint of
                // the same name being attached right now.
                return request.ContainerId.Length > 0 ? await DetachByContainerAsync(request, cancellationToken) : new DetachResponse { Detached = false };
            }
        }
        var detached = true;
        try
        {
            await client.Endpoints.DeleteAsync(request.Namespace, request.Name, etag, call);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
            detached = false;
        }
        await Task.Run(() => EndpointWiring.Disconnect(veth, options.RouteProtocol), cancellationToken);
        return new DetachResponse { Detached = detached };
    }

    /// <summary>
    /// A detach whose name is not its container's endpoint: a DEL without the pod name its ADD had
    /// (the plugin then names the endpoint for the container id). The endpoint this agent wired
    /// or saw for that container and interface is detached instead, under the same conditions.
    /// </summary>
    private Task<DetachResponse> DetachByContainerAsync(DetachRequest request, CancellationToken cancellationToken)
    {
        var key = orphans.EndpointOf(AttachmentLabels.Key(request.ContainerId, request.InterfaceName));
        if (key?.Split('/') is not [var ns, var name] || (ns == request.Namespace && name == request.Name))
        {
            return Task.FromResult(new DetachResponse { Detached = false });
        }
        return DetachAsync(new DetachRequest(request) { Namespace = ns, Name = name }, cancellationToken);
    }

    private async Task<ListAttachmentsResponse> ListAsync(ListAttachmentsRequest request, CancellationToken cancellationToken)
    {
        var response = new ListAttachmentsResponse();
        var page = new ListRequest { Namespace = request.Namespace, PageSize = 1000 };
        do
        {
            var list = await client.Endpoints.ListAsync(page, Calls.Within(CallTimeout, cancellationToken));
            response.Endpoints.Add(list.Endpoints.Where(e => e.Spec.Node == options.NodeName && Carries(e, request.Labels)));
            page.PageToken = list.NextPageToken;
        }
        while (page.PageToken.Length > 0);
        return response;
    }

    private async Task<AgentStatusResponse> StatusAsync(AgentStatusRequest request, CancellationToken cancellationToken)
    {
        if (Sync.AgentReadiness.NotReady(options, lease, sync) is { } reason)
            return NotReady(reason);
        if (request.Network.Length > 0)
        {
            try
            {
                await client.Networks.GetAsync("", request.Network, Calls.Within(CallTimeout, cancellationToken));
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
            {
                return NotReady($"network '{request.Network}' does not exist");
            }
            catch (RpcException e) when (e.StatusCode is StatusCode.Unavailable or StatusCode.DeadlineExceeded)
            {
                return NotReady($"the control plane is unreachable ({e.StatusCode})");
            }
        }
        return new AgentStatusResponse { Ready = true };
    }

    /// <summary>
    /// A call whose control-plane request found no silo answers UNAVAILABLE saying so, naming the
    /// control plane as this agent knows it: the caller (the CNI plugin) reached this agent, and
    /// the transport's own words (a unix socket's "localhost:80") would only mislead. A status a
    /// silo answered with (its store is lost, it left the cluster, it did not answer in time: the
    /// client names it) passes on as it is.
    /// </summary>
    private async Task<T> Upstream<T>(Task<T> call)
    {
        try
        {
            return await call;
        }
        catch (RpcException e) when (FailoverCallInvoker.Unreachable(e) && e.Status.DebugException is not null)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"the control plane ({options.ControlPlane}) is unreachable ({e.StatusCode})"));
        }
    }

    private static AgentStatusResponse NotReady(string reason) => new() { Ready = false, Reason = reason };

    private async Task WaitRegisteredAsync(CancellationToken cancellationToken)
    {
        // Endpoints can only live on a registered node: wait for this one's registration.
        try
        {
            await lease.Registered.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"node '{options.NodeName}' is not registered with the control plane yet"));
        }
    }

    private static bool Carries(Endpoint endpoint, IDictionary<string, string> labels) =>
        labels.All(l => endpoint.Metadata.Labels.TryGetValue(l.Key, out var value) && value == l.Value);

    private static bool IsFor(Endpoint endpoint, string containerId, string interfaceName) =>
        endpoint.Metadata.Labels.TryGetValue(AttachmentLabels.Attachment, out var key) && key == AttachmentLabels.Key(containerId, interfaceName);

    private static string Colons(PhysicalAddress mac) => string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));
}
