namespace ControlPlane.Dns.Wire;

/// <summary>
/// What a query asked, parsed without allocation. The question's name text (lower-case) sits in
/// the caller's buffer; <see cref="QuestionEnd"/> lets the response copy the question verbatim,
/// so the client sees its own letter case.
/// </summary>
public struct DnsQuery
{
    public ushort Id;
    public byte Opcode;
    public bool RecursionDesired;
    public bool CheckingDisabled;
    public int NameLength;
    public ushort Type;
    public ushort Class;
    public int QuestionEnd;
    public bool HasOpt;
    public ushort UdpPayloadSize;
    public byte EdnsVersion;
    public bool DnssecOk;
    /// <summary>Where the query's TSIG record starts (its owner, the key's name), or 0 when it is not signed.</summary>
    public int TsigOwner;
    /// <summary>Where the TSIG record's data starts (see <see cref="TsigRecord"/>).</summary>
    public int TsigData;
    /// <summary>Asked over TCP: an answer too large for the 64 KiB message keeps the records that fit (with TC), as no retry can do better.</summary>
    public bool OverTcp;
}
