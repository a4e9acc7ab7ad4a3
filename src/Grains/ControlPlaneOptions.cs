namespace ControlPlane.Grains;

/// <summary>Cluster-wide settings the grains apply (configuration section "ControlPlane").</summary>
public sealed class ControlPlaneOptions
{
    /// <summary>MTU of the underlay; a network's default MTU is this minus 50 bytes of VXLAN overhead.</summary>
    public int UnderlayMtu { get; set; } = 1500;

    /// <summary>Virtual IPs of ClusterIP services come from here.</summary>
    public string ServiceIpv4Cidr { get; set; } = "10.96.0.0/16";

    /// <summary>Optional IPv6 service range (prefix length at least 108); empty for none.</summary>
    public string ServiceIpv6Cidr { get; set; } = string.Empty;

    /// <summary>A node that sends no heartbeat for this long is marked not ready.</summary>
    public TimeSpan NodeLeaseDuration { get; set; } = TimeSpan.FromSeconds(40);

    public const int VxlanOverhead = 50;
}
