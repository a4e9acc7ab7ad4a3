namespace ControlPlane.Dns.Feed;

/// <summary>Where zone data comes from (configuration section "Dns").</summary>
public sealed class DnsFeedOptions
{
    /// <summary>The control plane: http://host:port or unix:/path/to/socket, or several separated by commas (the server follows another when its silo goes away). Empty: static zones only.</summary>
    public string ControlPlane { get; set; } = string.Empty;

    /// <summary>RFC 1035 zone files served as they are, beside the cluster zone.</summary>
    public List<string> ZoneFiles { get; set; } = [];

    /// <summary>
    /// Convergence-aware publishing: a new address appears only once every counted node has
    /// programmed what it depends on (its endpoint; for a ClusterIP name also the service and its
    /// endpoint set), or once <see cref="ProgrammedBound"/> has passed. Removals are published at once.
    /// </summary>
    public bool WaitForProgrammed { get; set; }

    /// <summary>How long a new address waits for the nodes before it is published anyway (counted as late).</summary>
    public TimeSpan ProgrammedBound { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Changes arriving within this window are applied in one rebuild.</summary>
    public TimeSpan Coalesce { get; set; } = TimeSpan.FromMilliseconds(5);

    /// <summary>Mutual TLS to https:// silos: the cluster CA, and this server's certificate and key (PEM; a reader, netctl pki issue --role dns).</summary>
    public string Ca { get; set; } = string.Empty;

    public string Certificate { get; set; } = string.Empty;

    public string Key { get; set; } = string.Empty;
}
