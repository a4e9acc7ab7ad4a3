using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// Protocol corners that dig and kdig reach with ordinary options: a label holding a '.' byte
/// (RFC 2181 §11: labels are octet strings; presentation form <c>\.</c>) and the DO bit (RFC 3225).
/// </summary>
public sealed class WireEdgeTests
{
    /// <summary>
    /// A '.' inside a label is part of the label, never a separator: such a name is not one of
    /// ours (NXDOMAIN inside the zone, REFUSED when its labels put it outside), and the reply is
    /// well formed (no compression pointer into the middle of a label).
    /// </summary>
    [Fact]
    public async Task A_dot_inside_a_label_belongs_to_the_label()
    {
        await using var dns = await ClusterDns.StartAsync();
        await dns.Client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
        await dns.AwaitAnswerAsync("web.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 1);
        foreach (var tool in (string[])["dig", "kdig"])
        {
            var inside = await dns.AskAsync(tool, @"web\.shop.svc.cluster.local", "A");
            Assert.True(inside.Status == "NXDOMAIN", inside.Text);
            Assert.Empty(inside.Answer);
            Assert.StartsWith("cluster.local. ", Assert.Single(inside.Authority));
            Assert.Equal("NXDOMAIN", (await dns.AskAsync(tool, @"1\.0.96.10.in-addr.arpa", "PTR")).Status);
            foreach (var outside in (string[])[@"web.shop.svc.cluster\.local", @"svc\.cluster\.local", @"cluster\.local"])
            {
                var refused = await dns.AskAsync(tool, outside, "SOA");
                Assert.True(refused.Status == "REFUSED", refused.Text);
            }
        }
    }

    /// <summary>
    /// A TSIG-signed query (RFC 8945): the server holds no keys, so it answers NOTAUTH with an
    /// unsigned TSIG record whose error is BADKEY (§5.2.1, §5.3.2), for names in our zones and
    /// outside them alike, and answers nothing a client would take for a verified reply.
    /// </summary>
    [Fact]
    public async Task A_signed_query_is_answered_NOTAUTH_with_BADKEY()
    {
        await using var dns = await ClusterDns.StartAsync();
        await dns.Client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
        await dns.AwaitAnswerAsync("web.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 1);
        const string Key = "hmac-sha256:transfer-key:c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0IQ==";
        foreach (var tool in (string[])["dig", "kdig"])
        {
            foreach (var name in (string[])["web.shop.svc.cluster.local", "cluster.local", "example.com"])
            {
                var signed = await dns.AskAsync(tool, "-y", Key, name, "A");
                // kdig shows the TSIG record's error (BADKEY) as the status, dig the header's rcode.
                Assert.True(signed.Status == (tool == "dig" ? "NOTAUTH" : "BADKEY"), signed.Text);
                Assert.Empty(signed.Answer);
                Assert.True(signed.Text.Contains("BADKEY", StringComparison.Ordinal), signed.Text);
                Assert.True(signed.Text.Contains("transfer-key.", StringComparison.Ordinal), signed.Text);
            }
        }
        // The same question unsigned is answered as ever.
        Assert.Single((await dns.AskAsync("dig", "web.shop.svc.cluster.local", "A")).Answer);
    }

    /// <summary>The DO bit of the query is copied into the response's OPT record (RFC 3225 §3).</summary>
    [Fact]
    public async Task The_DO_bit_is_copied_into_the_response()
    {
        await using var dns = await ClusterDns.StartAsync();
        foreach (var tool in (string[])["dig", "kdig"])
        {
            var signed = (await dns.AskAsync(tool, "+dnssec", "cluster.local", "SOA")).Text;
            Assert.True(signed.Contains("flags: do;", StringComparison.Ordinal), signed);
            var plain = (await dns.AskAsync(tool, "cluster.local", "SOA")).Text;
            Assert.False(plain.Contains("flags: do;", StringComparison.Ordinal), plain);
        }
    }
}
