using ControlPlane.Contracts.V1;

namespace ControlPlane.Cni.Commands;

/// <summary>
/// STATUS: ready when the node agent answers that its node is registered, its view synced and the
/// network there (otherwise 50 with its reason). An agent that cannot be reached is 51: nothing
/// keeps the existing containers' data path up to date either.
/// </summary>
public static class StatusCommand
{
    public static async Task RunAsync(PluginConfig config)
    {
        config.Validate("STATUS", "1.1.0");
        using var agent = new AgentConnection(config.AgentSocket);
        AgentStatusResponse status;
        try
        {
            status = await agent.StatusAsync(new AgentStatusRequest { Network = config.Network });
        }
        catch (CniException e) when (e.Code == CniCodes.TryAgainLater)
        {
            throw new CniException(CniCodes.NotAvailableLimitedConnectivity, "the node agent is unreachable", e.Details);
        }
        if (!status.Ready) throw new CniException(CniCodes.NotAvailable, "the plugin cannot attach now", status.Reason);
    }
}
