using ControlPlane.Contracts.Attachments;

namespace ControlPlane.NodeAgent.Dataplane;

/// <summary>
/// Names of the kernel objects the agent owns, all in one place. Linux allows 15 characters;
/// variable parts are hashed. Anything with these prefixes is ours; nothing else is touched.
/// </summary>
public static class Names
{
    public const string OverlayPrefix = "cpvx";
    public const string EndpointPrefix = HostInterfaces.Prefix;

    /// <summary>Priority of the rules that select a network's table (before the main table's 32766).</summary>
    public const uint RulePriority = 10_000;

    /// <summary>The routing table of a network: 100000 + VNI (above the ids distributions use).</summary>
    public static uint Table(uint vni) => 100_000 + vni;

    /// <summary>The VXLAN device of a network: cpvx&lt;vni&gt; (at most 12 characters).</summary>
    public static string Overlay(uint vni) => OverlayPrefix + vni;

    /// <summary>The host side of an endpoint's veth: cpe + 12 hex digits of a hash of its key.</summary>
    public static string EndpointVeth(string endpointKey) => HostInterfaces.Of(endpointKey);
}
