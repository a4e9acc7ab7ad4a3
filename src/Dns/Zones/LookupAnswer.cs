namespace ControlPlane.Dns.Zones;

/// <summary>What a lookup found, beside its <see cref="LookupResult"/> (filled in without allocation).</summary>
public struct LookupAnswer
{
    /// <summary>The zone the name lies in (null when not authoritative).</summary>
    public Zone? Zone;

    /// <summary>Where the zone's apex starts inside the name's text (and so inside its wire form).</summary>
    public int ApexOffset;

    /// <summary>Success: the records of the type asked, or the name's CNAME.</summary>
    public RecordSet? Set;

    /// <summary>Success for ANY: every record set of the name.</summary>
    public RecordSet[]? All;

    /// <summary>Success for a synthesized pod record (<see cref="Set"/> and <see cref="All"/> are null).</summary>
    public PodAddress Address;

    /// <summary>TTL of the synthesized record.</summary>
    public uint AddressTtl;
}
