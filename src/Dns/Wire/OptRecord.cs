using System.Buffers.Binary;

namespace ControlPlane.Dns.Wire;

/// <summary>The OPT pseudo-record this server writes into responses (RFC 6891 §6.1.2): no options.</summary>
public static class OptRecord
{
    /// <summary>Root owner, type, class, TTL and an empty RDATA.</summary>
    public const int Length = 11;

    /// <param name="payload">Largest UDP payload this server accepts (the CLASS field).</param>
    /// <param name="extendedRcode">Upper eight bits of the 12-bit rcode.</param>
    /// <param name="dnssecOk">DO, copied from the query (RFC 3225 §3).</param>
    public static void Write(Span<byte> destination, int payload, int extendedRcode, bool dnssecOk)
    {
        destination[0] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[1..], (ushort)DnsType.OPT);
        BinaryPrimitives.WriteUInt16BigEndian(destination[3..], (ushort)payload);
        destination[5] = (byte)extendedRcode;
        destination[6] = 0; // version
        destination[7] = dnssecOk ? (byte)0x80 : (byte)0;
        destination[8] = 0;
        BinaryPrimitives.WriteUInt16BigEndian(destination[9..], 0);
    }
}
