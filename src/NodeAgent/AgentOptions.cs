using System.Net;

namespace ControlPlane.NodeAgent;

/// <summary>Settings of the node agent (configuration section "Agent").</summary>
public sealed class AgentOptions
{
    /// <summary>The control plane's gRPC address.</summary>
    public string ControlPlane { get; set; } = "http://127.0.0.1:7070";

    /// <summary>This node's name; defaults to the host name.</summary>
    public string NodeName { get; set; } = Dns.GetHostName().ToLowerInvariant();

    /// <summary>The underlay address other nodes send VXLAN traffic to. Required.</summary>
    public string UnderlayIp { get; set; } = string.Empty;

    /// <summary>Upper bound of the retry backoff while the control plane is unreachable.</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromSeconds(10);

    public IReadOnlyList<string> Validate()
    {
        var errors = new List<string>();
        if (!Uri.TryCreate(ControlPlane, UriKind.Absolute, out var uri) || uri.Scheme != Uri.UriSchemeHttp)
            errors.Add($"Agent:{nameof(ControlPlane)} '{ControlPlane}' must be an http:// address (h2c)");
        if (!IPAddress.TryParse(UnderlayIp, out _))
            errors.Add($"Agent:{nameof(UnderlayIp)} '{UnderlayIp}' must be this node's underlay IP address");
        if (string.IsNullOrWhiteSpace(NodeName))
            errors.Add($"Agent:{nameof(NodeName)} must not be empty");
        return errors;
    }
}
