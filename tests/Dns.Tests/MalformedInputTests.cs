using ControlPlane.Dns.Handling;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Tests;

public sealed class MalformedInputTests
{
    private static readonly QueryHandler Handler = new(ZoneSnapshot.Build(ZoneFile.Parse("""
        $ORIGIN cluster.local.
        @ 30 IN SOA ns.dns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 5
        web.shop.svc 30 IN A 10.96.0.20
        """)));

    private static (int Length, byte[] Buffer) Handle(byte[] query)
    {
        var buffer = new byte[512];
        return (Handler.Handle(query, buffer, tcp: false), buffer);
    }

    public static TheoryData<string, byte[]> FormErrors => new()
    {
        // Header says one question; the name's pointer points at itself (a loop).
        { "pointer loop", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 12, 0, 1, 0, 1] },
        // A pointer forwards into the message.
        { "forward pointer", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 14, 0, 1, 0, 1, 0] },
        // Pointers into the header, which holds no name: echoed as they were, they would point
        // at the response's own header bytes (RFC 1035 §4.1.4).
        { "pointer to the header's flags", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 2, 0, 1, 0, 1] },
        { "pointer to the message's first byte", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0xC0, 0, 0, 1, 0, 1] },
        { "label past the end", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 9, (byte)'a', 0, 1] },
        { "question without type", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0] },
        { "no question", [0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0] },
        { "two questions", [0, 1, 1, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 1, 0, 1] },
        { "reserved label type", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0x40, 0, 0, 1, 0, 1] },
        { "additional record cut short", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41] },
        // An OPT whose 4 bytes of data hold an option claiming 20 (RFC 6891 §6.1.2).
        { "EDNS option longer than its record", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 4, 0, 10, 0, 20] },
        // OPT belongs only in the additional section (RFC 6891 §6.1.1): not as the question's type, nor in the authority section.
        { "question of type OPT", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 41, 0, 1] },
        { "OPT in the authority section", [0, 1, 1, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 1, 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0] },
        { "EDNS option header cut short", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 2, 0, 10] },
        // TSIG only as the last record of the additional section, of class ANY, well formed (RFC 8945 §4.2, §5.1).
        { "TSIG before the OPT record", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 1, .. Tsig(), 0, 0, 41, 2, 0, 0, 0, 0, 0, 0, 0] },
        { "TSIG in the answer section", [0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 1, .. Tsig()] },
        { "two TSIG records", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 2, 0, 0, 1, 0, 1, .. Tsig(), .. Tsig()] },
        { "TSIG of class IN", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, .. Tsig(recordClass: 1)] },
        { "TSIG whose MAC runs past its data", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, .. Tsig(macSize: 32)] },
        // The counts say where a message ends: anything after that is not a record of it (BIND and Knot: FORMERR).
        { "bytes after the last record", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0xFF, 0xFF, 0xFF] },
        { "an OPT record the additional count leaves out", [0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 1, 0, 0, 41, 4, 0, 0, 0, 0, 0, 0, 0] },
    };

    /// <summary>A TSIG record (key "k", algorithm "a") with an empty MAC that claims <paramref name="macSize"/> bytes.</summary>
    private static byte[] Tsig(ushort recordClass = 255, byte macSize = 0) =>
        [1, (byte)'k', 0, 0, 250, 0, (byte)recordClass, 0, 0, 0, 0, 0, 19, 1, (byte)'a', 0, 0, 0, 0x67, 0, 0, 0, 1, 44, 0, macSize, 0, 1, 0, 0, 0, 0];

    /// <summary>A well-formed signed query gets NOTAUTH and a TSIG record with error BADKEY (RFC 8945 §5.2.1): this server holds no keys.</summary>
    [Fact]
    public void Signed_IsNotAuth_WithBadKey()
    {
        var (length, buffer) = Handle([0, 1, 1, 0, 0, 1, 0, 0, 0, 0, 0, 1, 0, 0, 1, 0, 1, .. Tsig()]);
        var response = DecodedResponse.Decode(buffer.AsSpan(0, length));
        Assert.Equal((int)Rcode.NotAuth, response.Rcode);
        Assert.Empty(response.Answer);
        // The record comes back with its key, algorithm, time and fudge, no MAC, the original id and BADKEY.
        Assert.Equal([.. Tsig()[..^6], 0, 1, 0, (byte)TsigRecord.BadKey, 0, 0], buffer[17..length]);
    }

    [Theory]
    [MemberData(nameof(FormErrors))]
    public void Malformed_IsFormErr_WithTheQueryId(string _, byte[] query)
    {
        var (length, buffer) = Handle(query);
        var response = DecodedResponse.Decode(buffer.AsSpan(0, length));
        Assert.Equal((int)Rcode.FormErr, response.Rcode);
        Assert.Equal(1, response.Id);
    }

    [Fact]
    public void TooShortOrAResponse_IsDropped()
    {
        Assert.Equal(0, Handle([0, 1, 2]).Length);
        var response = Queries.Build("web.shop.svc.cluster.local", DnsType.A, flags: 0x8100);
        Assert.Equal(0, Handle(response).Length);
    }

    [Fact]
    public void LongestLegalName_IsAnsweredNxDomain_AndOneByteLonger_IsFormErr()
    {
        // 255 bytes on the wire: three labels of 63, one of 47, and the zone.
        var labels = string.Join('.', new string('a', 63), new string('b', 63), new string('c', 63), new string('d', 47));
        var legal = labels + ".cluster.local";
        Assert.Equal(255, DnsName.Encode(legal).Length);
        Assert.Equal((int)Rcode.NXDomain, DecodedResponse.Decode(Slice(Handle(Queries.Build(legal, DnsType.A)))).Rcode);

        var query = Queries.Build(legal, DnsType.A).ToList();
        query.InsertRange(12, [1, (byte)'x']); // one more label: 257 bytes
        Assert.Equal((int)Rcode.FormErr, DecodedResponse.Decode(Slice(Handle([.. query]))).Rcode);
    }

    private static ReadOnlySpan<byte> Slice((int Length, byte[] Buffer) result) => result.Buffer.AsSpan(0, result.Length);
}
