using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cni.Commands;

/// <summary>
/// DEL: detaches the container's endpoint, only if it is still this container's attachment through
/// this network configuration (a name reused by a newer container, or the same container's
/// interface added through another configuration, is left alone). Missing is success, so DEL may
/// repeat; CNI_NETNS and prevResult are not needed (the agent removes the host end, and the
/// container's end goes with it), and neither is the configuration's network.
/// </summary>
public static class DelCommand
{
    public static async Task RunAsync(CniInvocation invocation, PluginConfig config)
    {
        config.Validate("DEL", "0.3.0", needsNetwork: false);
        var identity = EndpointIdentity.Of(invocation, config);
        using var agent = new AgentConnection(config.AgentSocket);
        await agent.DetachAsync(new DetachRequest
        {
            Namespace = identity.Namespace,
            Name = identity.Name,
            ContainerId = invocation.ContainerId,
            InterfaceName = invocation.InterfaceName,
            Labels = { [AttachmentLabels.CniNetwork] = config.Name },
        });
    }
}
