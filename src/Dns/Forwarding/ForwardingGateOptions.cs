namespace ControlPlane.Dns.Forwarding;

/// <summary>Who may use the forwarders (configuration section "Dns:Forwarding").</summary>
public sealed class ForwardingGateOptions
{
    /// <summary>
    /// CIDRs or the keywords localhost, localnets, networks (see <see cref="ForwardingClients"/>);
    /// empty means <see cref="ForwardingClients.Default"/>, all three keywords.
    /// </summary>
    public List<string> AllowedClients { get; set; } = [];
}
