using System.Net;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Tests;

/// <summary>Pod record labels: every spelling of an address reads back as that address; nothing else does.</summary>
public sealed class PodAddressTests
{
    [Fact]
    public void TryParseLabel_RandomAddresses_InEverySpelling_ReadBackAsTheAddress()
    {
        var random = new Random(14);
        var bytes = new byte[16];
        for (var i = 0; i < 20_000; i++)
        {
            random.NextBytes(bytes);
            // Zero runs of random length, so that "--" lands everywhere.
            var zeros = random.Next(0, 16);
            Array.Clear(bytes, random.Next(0, 16 - zeros + 1), zeros);
            var v6 = new IPAddress(bytes);
            var v4 = new IPAddress(bytes.AsSpan(0, 4));
            var expanded = string.Join('-', bytes.Chunk(2).Select(g => $"{g[0] << 8 | g[1]:x}"));
            // .NET writes ::a.b.c.d and ::ffff:a.b.c.d with a dotted tail, which has no dashed form.
            var spellings = v6.ToString().Contains('.') ? new[] { (expanded, v6), (Dash(v4), v4) } : [(Dash(v6), v6), (expanded, v6), (Dash(v4), v4)];
            foreach (var (label, address) in spellings)
            {
                Assert.True(PodAddress.TryParseLabel(label, out var parsed), label);
                Assert.Equal(PodAddress.From(address), parsed);
            }
        }
    }

    [Theory]
    [InlineData("")]
    [InlineData("10-244-0")]           // three parts
    [InlineData("10-244-0-5-1")]       // five parts: not IPv4, and not IPv6 (eight groups needed)
    [InlineData("010-244-0-5")]        // leading zero
    [InlineData("10-244-0-256")]
    [InlineData("10-244--5")]          // not IPv4 (an empty part), but IPv6: checked below
    [InlineData("fd00--1--2")]         // two gaps
    [InlineData("fd00---1")]
    [InlineData("fd00-1-2-3-4-5-6-7-8")] // nine groups
    [InlineData("fd00-12345--1")]      // group of five digits
    [InlineData("fd00-244--g")]
    [InlineData("FD00-244--5")]        // names arrive lower-cased; upper case never reaches the parser
    [InlineData("web")]
    public void TryParseLabel_NotAnAddress_IsRejected(string label)
    {
        if (label == "10-244--5")
        {
            // Not IPv4 (an empty part), but a valid IPv6 spelling: 10:244::5.
            Assert.True(PodAddress.TryParseLabel(label, out var parsed));
            Assert.Equal(PodAddress.From(IPAddress.Parse("10:244::5")), parsed);
            return;
        }
        Assert.False(PodAddress.TryParseLabel(label, out _));
    }

    private static string Dash(IPAddress address) => address.ToString().Replace('.', '-').Replace(':', '-');
}
