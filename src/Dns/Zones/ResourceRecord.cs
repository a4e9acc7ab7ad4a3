using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>One record in presentation form, as a zone file line would give it.</summary>
/// <param name="Owner">Fully qualified owner name (trailing dot optional).</param>
/// <param name="Data">RDATA in presentation form, names fully qualified.</param>
public sealed record ResourceRecord(string Owner, DnsType Type, uint Ttl, string Data)
{
    public override string ToString() => $"{DnsName.Canonical(Owner)}. {Ttl} IN {Type} {Data}";
}
