using System.Buffers.Binary;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>An authoritative zone: its apex and the SOA that negative answers carry.</summary>
public sealed class Zone
{
    public Zone(string apex, uint soaTtl, byte[] soaRdata)
    {
        Apex = DnsName.Canonical(apex);
        // RFC 2308 §3: negative answers are cached for min(SOA TTL, SOA MINIMUM).
        var minimum = BinaryPrimitives.ReadUInt32BigEndian(soaRdata.AsSpan(soaRdata.Length - 4));
        NegativeTtl = Math.Min(soaTtl, minimum);
        Serial = BinaryPrimitives.ReadUInt32BigEndian(soaRdata.AsSpan(soaRdata.Length - 20));
        // Authority SOA without its owner: the handler writes a pointer to the apex inside the question.
        SoaTail = new byte[10 + soaRdata.Length];
        BinaryPrimitives.WriteUInt16BigEndian(SoaTail, (ushort)DnsType.SOA);
        BinaryPrimitives.WriteUInt16BigEndian(SoaTail.AsSpan(2), 1);
        BinaryPrimitives.WriteUInt32BigEndian(SoaTail.AsSpan(4), NegativeTtl);
        BinaryPrimitives.WriteUInt16BigEndian(SoaTail.AsSpan(8), (ushort)soaRdata.Length);
        soaRdata.CopyTo(SoaTail, 10);
    }

    /// <summary>Lower-case, no trailing dot ("" for the root).</summary>
    public string Apex { get; }

    public uint Serial { get; }

    public uint NegativeTtl { get; }

    /// <summary>TYPE, CLASS, TTL, RDLENGTH and RDATA of the SOA for the authority section.</summary>
    public byte[] SoaTail { get; }
}
