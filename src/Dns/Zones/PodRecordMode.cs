namespace ControlPlane.Dns.Zones;

/// <summary>Whether <c>a-b-c-d.&lt;namespace&gt;.pod.&lt;zone&gt;</c> names are answered (setting "Dns:PodRecords").</summary>
public enum PodRecordMode
{
    /// <summary>Only when an endpoint of that namespace holds the address (CoreDNS's "pods verified").</summary>
    Verified,

    /// <summary>No pod records: every name under pod.&lt;zone&gt; is NXDOMAIN, and endpoints are not watched.</summary>
    Disabled,
}
