using System.Net;
using System.Net.NetworkInformation;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.NodeAgent.Dataplane;
using Grpc.Core;

namespace ControlPlane.NodeAgent.Attach;

/// <summary>
/// controlplane.v1.Agent on the node's unix socket. Attach creates the endpoint through the
/// control plane (on this node), wires its veth and returns its addresses; Detach reverses it.
/// Both are idempotent. A wiring failure after the endpoint was created deletes it again.
/// </summary>
public sealed class AttachApi(ControlPlaneClient client, AgentOptions options, PendingAttachments pending, Lease.NodeLease lease) : Agent.AgentBase
{
    public override Task<AttachResponse> Attach(AttachRequest request, ServerCallContext context) => AttachAsync(request, context.CancellationToken);

    public override Task<DetachResponse> Detach(DetachRequest request, ServerCallContext context) => DetachAsync(request, context.CancellationToken);

    private async Task<AttachResponse> AttachAsync(AttachRequest request, CancellationToken cancellationToken)
    {
        if (request.NetnsPath.Length == 0 || !File.Exists(request.NetnsPath))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"netns_path: '{request.NetnsPath}' does not exist"));
        if (request.InterfaceName.Length is 0 or > 15 || request.InterfaceName.Contains('/'))
            throw new RpcException(new Status(StatusCode.InvalidArgument, $"interface_name: '{request.InterfaceName}' is not a Linux interface name"));
        // Endpoints can only live on a registered node: wait for this one's registration.
        try
        {
            await lease.Registered.WaitAsync(TimeSpan.FromSeconds(10), cancellationToken);
        }
        catch (TimeoutException)
        {
            throw new RpcException(new Status(StatusCode.Unavailable, $"node '{options.NodeName}' is not registered with the control plane yet"));
        }
        var call = Calls.Within(TimeSpan.FromSeconds(10), cancellationToken);
        var endpoint = new Endpoint
        {
            Metadata = new ObjectMeta { Namespace = request.Namespace, Name = request.Name },
            Spec = new EndpointSpec { Network = request.Network, Node = options.NodeName, Ready = true, Hostname = request.Hostname, Subdomain = request.Subdomain },
        };
        endpoint.Metadata.Labels.Add(request.Labels);
        endpoint.Spec.Ports.Add(request.Ports);
        var created = false;
        try
        {
            endpoint = await client.Endpoints.CreateAsync(endpoint, call);
            created = true;
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            endpoint = await client.Endpoints.GetAsync(request.Namespace, request.Name, call);
            if (endpoint.Spec.Node != options.NodeName || endpoint.Spec.Network != request.Network)
                throw new RpcException(new Status(StatusCode.FailedPrecondition, $"endpoint {request.Namespace}/{request.Name} exists on node '{endpoint.Spec.Node}', network '{endpoint.Spec.Network}'"));
        }
        var key = $"{request.Namespace}/{request.Name}";
        var network = await client.Networks.GetAsync("", endpoint.Spec.Network, call);
        var gateways = new[] { endpoint.Status.Ipv4Gateway, endpoint.Status.Ipv6Gateway }.Where(g => g.Length > 0).Select(IPAddress.Parse).ToList();
        var wiring = new EndpointWiring.Wiring(Names.EndpointVeth(key), request.InterfaceName, [.. endpoint.Status.Ips.Select(IPAddress.Parse)],
            PhysicalAddress.Parse(endpoint.Status.Mac), gateways, (int)endpoint.Status.Mtu, Names.Table(network.Spec.Vni));
        pending.Add(wiring.HostInterface, key);
        try
        {
            await Task.Run(() => EndpointWiring.Connect(request.NetnsPath, wiring, options.RouteProtocol), cancellationToken);
        }
        catch (Exception e) when (e is NetlinkException or InvalidOperationException or IOException)
        {
            pending.Remove(wiring.HostInterface);
            if (created)
            {
                EndpointWiring.Disconnect(wiring.HostInterface, options.RouteProtocol);
                await client.Endpoints.DeleteAsync(request.Namespace, request.Name, options: call);
            }
            throw new RpcException(new Status(StatusCode.Internal, $"wiring {key} failed: {e.Message}"));
        }
        var response = new AttachResponse
        {
            Mac = endpoint.Status.Mac,
            Ipv4Gateway = endpoint.Status.Ipv4Gateway,
            Ipv6Gateway = endpoint.Status.Ipv6Gateway,
            Mtu = endpoint.Status.Mtu,
            InterfaceName = request.InterfaceName,
            Endpoint = endpoint,
        };
        response.Ips.Add(endpoint.Status.Ips);
        return response;
    }

    private async Task<DetachResponse> DetachAsync(DetachRequest request, CancellationToken cancellationToken)
    {
        try
        {
            await client.Endpoints.DeleteAsync(request.Namespace, request.Name, options: Calls.Within(TimeSpan.FromSeconds(10), cancellationToken));
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
        {
        }
        await Task.Run(() => EndpointWiring.Disconnect(Names.EndpointVeth($"{request.Namespace}/{request.Name}"), options.RouteProtocol), cancellationToken);
        return new DetachResponse();
    }
}
