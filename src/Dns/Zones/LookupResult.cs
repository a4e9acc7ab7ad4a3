namespace ControlPlane.Dns.Zones;

/// <summary>What a zone index says about a name and type (after CoreDNS's file plugin).</summary>
public enum LookupResult : byte
{
    Success,
    /// <summary>The name exists, but has no records of the type.</summary>
    NoData,
    NameError,
    /// <summary>The name is in none of the zones.</summary>
    NotAuthoritative,
}
