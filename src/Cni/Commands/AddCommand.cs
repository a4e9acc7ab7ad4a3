using System.Text.Json.Nodes;
using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Cni.Commands;

/// <summary>
/// ADD: attaches the container through the node agent (which creates the endpoint and wires the
/// veth into CNI_NETNS) and returns the result. Requested addresses come from the ips capability,
/// args.cni.ips or CNI_ARGS IP; a taken one fails with 106 and the holder in the details.
/// </summary>
public static class AddCommand
{
    public static async Task<JsonObject> RunAsync(CniInvocation invocation, PluginConfig config)
    {
        config.Validate("ADD", "0.3.0");
        var identity = EndpointIdentity.Of(invocation, config);
        var requested = config.RequestedIps(invocation.Args);
        var request = new AttachRequest
        {
            Namespace = identity.Namespace,
            Name = identity.Name,
            Network = config.Network,
            NetnsPath = invocation.Netns,
            InterfaceName = invocation.InterfaceName,
            ContainerId = invocation.ContainerId,
            Ips = { requested },
        };
        foreach (var (key, value) in config.Labels) request.Labels[key] = value;
        foreach (var (name, port, protocol) in config.Ports)
        {
            request.Ports.Add(new NamedPort { Name = name, Port = port, Protocol = protocol switch { "UDP" => Protocol.Udp, "SCTP" => Protocol.Sctp, _ => Protocol.Tcp } });
        }
        request.Labels[AttachmentLabels.CniNetwork] = config.Name;
        using var agent = new AgentConnection(config.AgentSocket);
        // An interface of that name is someone else's (another container's, or this container's
        // through another network configuration), unless it is what an ADD of this very container
        // through this configuration began and did not finish (the agent died while wiring it):
        // then the endpoint is already attached for this container, through that interface (the
        // far end of its veth), and the agent completes the wiring.
        if (NetnsState.HasLink(invocation.Netns, invocation.InterfaceName)
            && (await agent.AttachedAsync(identity, config.Name) is null || !NetnsState.IsEndpointsInterface(invocation.Netns, invocation.InterfaceName, HostInterfaces.Of($"{identity.Namespace}/{identity.Name}"))))
            throw new CniException(CniCodes.InterfaceExists, $"interface {invocation.InterfaceName} already exists in the container", $"CNI_NETNS: {invocation.Netns}");
        AttachResponse attached;
        try
        {
            attached = await agent.AttachAsync(request);
        }
        catch (CniException e) when (e.Code == CniCodes.Refused(StatusCode.AlreadyExists))
        {
            throw new CniException(e.Code, $"requested address {string.Join(", ", requested)} is already in use", e.Details);
        }
        if (requested.Except(attached.Ips).ToList() is { Count: > 0 } missing)
            throw new CniException(CniCodes.Refused(StatusCode.FailedPrecondition), $"endpoint {identity.Namespace}/{identity.Name} exists without the requested address",
                $"requested {string.Join(", ", missing)}; it has {string.Join(", ", attached.Ips)}");
        return AttachmentResult.Build(config, invocation, identity, attached);
    }
}
