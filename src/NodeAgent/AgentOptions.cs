using System.Net;

namespace ControlPlane.NodeAgent;

/// <summary>Settings of the node agent (configuration section "Agent").</summary>
public sealed class AgentOptions
{
    /// <summary>The control plane's gRPC address (http://host:port or unix:/path), or several separated by commas: the agent moves to another when its silo goes away.</summary>
    public string ControlPlane { get; set; } = "http://127.0.0.1:7070";

    /// <summary>This node's name; defaults to the host name.</summary>
    public string NodeName { get; set; } = Dns.GetHostName().ToLowerInvariant();

    /// <summary>The underlay address other nodes send VXLAN traffic to. Required.</summary>
    public string UnderlayIp { get; set; } = string.Empty;

    /// <summary>Unix socket of the local attach API (for orchestrators and the CNI plugin).</summary>
    public string AttachSocket { get; set; } = "/run/controlplane/agent.sock";

    /// <summary>Route protocol number that marks the routes and nexthops this agent owns.</summary>
    public byte RouteProtocol { get; set; } = 252;

    /// <summary>Turn on IPv4 forwarding in the node's namespace once an overlay is programmed.</summary>
    public bool EnableForwarding { get; set; } = true;

    /// <summary>Program service virtual IPs (nftables table "controlplane") on this node.</summary>
    public bool ServiceProxy { get; set; } = true;

    /// <summary>Enforce network policies (chains and sets in the same table) on this node.</summary>
    public bool NetworkPolicy { get; set; } = true;

    /// <summary>
    /// Most allow-list entries one endpoint may need per direction. A policy set that needs more
    /// is not applied: the endpoint stays closed in that direction and the node's status says why.
    /// </summary>
    public int PolicyEntryLimit { get; set; } = 65_536;

    /// <summary>Full resync with the kernel at least this often (catches drift).</summary>
    public TimeSpan ResyncInterval { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>
    /// How long an endpoint attached on this node may be without its interface (its container's
    /// namespace was destroyed without a DEL) before the agent detaches it. 0: never.
    /// </summary>
    public TimeSpan OrphanGracePeriod { get; set; } = TimeSpan.FromMinutes(1);

    /// <summary>Upper bound of the retry backoff while the control plane is unreachable.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>Mutual TLS to https:// silos: the cluster CA (PEM).</summary>
    public string Ca { get; set; } = string.Empty;

    /// <summary>This node's certificate (PEM; netctl pki issue --role agent --name NODE, whose CN must be <see cref="NodeName"/>).</summary>
    public string Certificate { get; set; } = string.Empty;

    /// <summary>The key of <see cref="Certificate"/> (PEM).</summary>
    public string Key { get; set; } = string.Empty;

    /// <summary>The TLS settings, or null when none are set (<see cref="Validate"/> reports them unusable).</summary>
    public global::ControlPlane.Contracts.Client.ClientTls? Tls() =>
        global::ControlPlane.Contracts.Client.ClientTls.FromOptions(Ca, Certificate, Key, ("Agent:Ca", "Agent:Certificate", "Agent:Key"), out _);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (global::ControlPlane.Contracts.Client.ControlPlaneChannel.Problem(ControlPlane) is { } problem)
            errors.Add($"Agent:{nameof(ControlPlane)}: {problem}");
        if (string.IsNullOrWhiteSpace(UnderlayIp))
            errors.Add($"Agent:{nameof(UnderlayIp)} is required: this node's underlay address, which the other nodes' overlay traffic is sent to");
        else if (!IPAddress.TryParse(UnderlayIp, out _))
            errors.Add($"Agent:{nameof(UnderlayIp)} '{UnderlayIp}' is not an IP address (it must be this node's underlay address)");
        if (PolicyEntryLimit < 1)
            errors.Add($"Agent:{nameof(PolicyEntryLimit)} {PolicyEntryLimit} must be at least 1");
        if (string.IsNullOrWhiteSpace(NodeName))
            errors.Add($"Agent:{nameof(NodeName)} must not be empty");
        else if (!global::ControlPlane.Contracts.DnsNames.IsSubdomain(NodeName))
            // The control plane would refuse to register it, and the agent would retry for ever.
            errors.Add($"Agent:{nameof(NodeName)} '{NodeName}' must be a DNS subdomain: lower-case letters, digits, '-' and '.', each label starting and ending alphanumeric, at most 253 characters");
        if (ResyncInterval <= TimeSpan.Zero)
            errors.Add($"Agent:{nameof(ResyncInterval)} {ResyncInterval} must be positive");
        if (OrphanGracePeriod < TimeSpan.Zero)
            errors.Add($"Agent:{nameof(OrphanGracePeriod)} {OrphanGracePeriod} must not be negative");
        var tls = global::ControlPlane.Contracts.Client.ClientTls.FromOptions(Ca, Certificate, Key, ("Agent:Ca", "Agent:Certificate", "Agent:Key"), out var tlsProblem);
        if (tlsProblem is not null) errors.Add(tlsProblem);
        // The control plane lets an agent act only for the node its certificate names: any other
        // name would be refused on every call, for ever.
        else if (tls?.Name is { } certified && !string.IsNullOrWhiteSpace(NodeName) && certified != NodeName)
            errors.Add($"Agent:{nameof(NodeName)} '{NodeName}' is not the node Agent:Certificate was issued for ('{certified}'): an agent may act only for the node its certificate names");
        return errors;
    }
}
