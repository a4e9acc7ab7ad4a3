namespace ControlPlane.Dns.Zones;

/// <summary>
/// Whether and how <c>a-b-c-d.&lt;namespace&gt;.pod.&lt;zone&gt;</c> names are answered (setting
/// "Dns:PodRecords"). <see cref="Verified"/> is the default: the Kubernetes DNS specification
/// (§2.6) asks for a record for any address, which is what <see cref="Insecure"/> gives, but
/// then anyone can make a name under the cluster domain resolve to any address they choose
/// (an attacker's address under a name a wildcard certificate for *.pod.&lt;zone&gt; covers, say);
/// CoreDNS offers both and recommends "pods verified" for the same reason.
/// </summary>
public enum PodRecordMode
{
    /// <summary>Only when an endpoint of that namespace holds the address (CoreDNS's "pods verified").</summary>
    Verified,

    /// <summary>No pod records: every name under pod.&lt;zone&gt; is NXDOMAIN, and endpoints are not watched.</summary>
    Disabled,

    /// <summary>
    /// Any valid address label in any namespace label, without watching endpoints (CoreDNS's
    /// "pods insecure"): the address is read from the name alone.
    /// </summary>
    Insecure,
}
