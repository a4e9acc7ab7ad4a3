using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// ExternalName services: a target in our own zones is chased (RFC 1034 §4.3.2), one outside them
/// is resolved through the forwarders when the client may use them; read with dig and kdig.
/// </summary>
public sealed class AliasChaseTests
{
    private static Service Alias(string name, string target) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "shop" },
        Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = target },
    };

    [Fact]
    public async Task ExternalNameIntoTheZone_AnswersTheAliasAndTheTargetsRecords()
    {
        await using var dns = await ClusterDns.StartAsync();
        var web = await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec { Network = "blue", IpFamilyPolicy = "RequireDualStack" },
        });
        var v4 = web.Status.ClusterIps.Single(ip => !ip.Contains(':'));
        var v6 = web.Status.ClusterIps.Single(ip => ip.Contains(':'));
        var pods = new List<Endpoint>();
        foreach (var name in new[] { "db-0", "db-1" })
        {
            pods.Add(await dns.Client.Endpoints.CreateAsync(new Endpoint
            {
                Metadata = new ObjectMeta { Name = name, Namespace = "shop", Labels = { ["app"] = "db" } },
                Spec = new EndpointSpec { Network = "blue", Node = "node-a", Ready = true },
            }));
        }
        await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "db", Namespace = "shop" },
            Spec = new ServiceSpec { Type = ServiceType.Headless, Network = "blue", Selector = { ["app"] = "db" }, IpFamilies = { "IPv4" } },
        });
        await dns.Client.Services.CreateAsync(Alias("alias", "web.shop.svc.cluster.local"));
        await dns.Client.Services.CreateAsync(Alias("chain", "alias.shop.svc.cluster.local."));
        await dns.Client.Services.CreateAsync(Alias("to-db", "db.shop.svc.cluster.local"));
        await dns.Client.Services.CreateAsync(Alias("gone", "nothing.shop.svc.cluster.local"));
        await dns.Client.Services.CreateAsync(Alias("ext", "example.org"));
        await dns.Client.Services.CreateAsync(Alias("loop-a", "loop-b.shop.svc.cluster.local"));
        await dns.Client.Services.CreateAsync(Alias("loop-b", "loop-a.shop.svc.cluster.local"));
        await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 2);
        await dns.AwaitAnswerAsync("loop-b.shop.svc.cluster.local", DnsType.CNAME, r => r.Answer.Count == 1);

        // The alias, then the target's address: A over UDP with dig, AAAA over TCP with kdig.
        var a = await dns.AskAsync("dig", "+norec", "alias.shop.svc.cluster.local", "A");
        Assert.Equal("NOERROR", a.Status);
        Assert.True(a.Authoritative);
        Assert.Equal(["alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.", $"web.shop.svc.cluster.local. 30 IN A {v4}"], a.Answer);
        var aaaa = await dns.AskAsync("kdig", "+tcp", "alias.shop.svc.cluster.local", "AAAA");
        Assert.Equal(["alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.", $"web.shop.svc.cluster.local. 30 IN AAAA {v6}"], aaaa.Answer);

        // A chain of aliases (the second written with a trailing dot).
        var chain = await dns.AskAsync("dig", "chain.shop.svc.cluster.local", "A");
        Assert.Equal([
            "chain.shop.svc.cluster.local. 30 IN CNAME alias.shop.svc.cluster.local.",
            "alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local.",
            $"web.shop.svc.cluster.local. 30 IN A {v4}"], chain.Answer);

        // A headless target: every address of its family.
        var toDb = await dns.AskAsync("kdig", "to-db.shop.svc.cluster.local", "A");
        Assert.Equal("to-db.shop.svc.cluster.local. 30 IN CNAME db.shop.svc.cluster.local.", toDb.Answer[0]);
        Assert.Equal(pods.Select(p => $"db.shop.svc.cluster.local. 30 IN A {p.Status.Ips[0]}").Order(), toDb.Answer.Skip(1).Order());
        // The target has no such records (db is IPv4 only): NODATA with the SOA, the alias kept.
        var noData = await dns.AskAsync("dig", "to-db.shop.svc.cluster.local", "AAAA");
        Assert.Equal("NOERROR", noData.Status);
        Assert.Equal(["to-db.shop.svc.cluster.local. 30 IN CNAME db.shop.svc.cluster.local."], noData.Answer);
        Assert.StartsWith("cluster.local. 5 IN SOA ns.dns.cluster.local. hostmaster.cluster.local.", Assert.Single(noData.Authority));

        // The target does not exist: NXDOMAIN (RFC 6604: the rcode is the last name's) with the alias and the SOA.
        var gone = await dns.AskAsync("dig", "gone.shop.svc.cluster.local", "A");
        Assert.Equal("NXDOMAIN", gone.Status);
        Assert.Equal(["gone.shop.svc.cluster.local. 30 IN CNAME nothing.shop.svc.cluster.local."], gone.Answer);
        Assert.StartsWith("cluster.local. 5 IN SOA", Assert.Single(gone.Authority));

        // Outside our zones: the alias only; the resolver carries on.
        var ext = await dns.AskAsync("dig", "ext.shop.svc.cluster.local", "A");
        Assert.Equal("NOERROR", ext.Status);
        Assert.Equal(["ext.shop.svc.cluster.local. 30 IN CNAME example.org."], ext.Answer);
        Assert.Empty(ext.Authority);

        // A loop: each alias once.
        var loop = await dns.AskAsync("kdig", "loop-a.shop.svc.cluster.local", "A");
        Assert.Equal("NOERROR", loop.Status);
        Assert.Equal([
            "loop-a.shop.svc.cluster.local. 30 IN CNAME loop-b.shop.svc.cluster.local.",
            "loop-b.shop.svc.cluster.local. 30 IN CNAME loop-a.shop.svc.cluster.local."], loop.Answer);

        // Asking for the alias itself is not chased.
        Assert.Equal(["alias.shop.svc.cluster.local. 30 IN CNAME web.shop.svc.cluster.local."],
            (await dns.AskAsync("dig", "alias.shop.svc.cluster.local", "CNAME")).Answer);
    }

    /// <summary>
    /// An ExternalName pointing outside the cluster, with a forwarder: the target is resolved
    /// upstream (as CoreDNS does) and its records follow the alias, since a stub resolver would
    /// not chase the alias itself. Names in the upstream's records are written in full: its
    /// compression pointers mean nothing in our message.
    /// </summary>
    [Fact]
    public async Task ExternalNameOutsideTheZones_WithAForwarder_AnswersTheAliasAndTheUpstreamsRecords()
    {
        await using var upstream = new Transport.DnsListener(new Handling.QueryHandler(Zones.ZoneSnapshot.Build(Zones.ZoneFile.Parse("""
            $ORIGIN example.test.
            @ 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60
            www 300 IN A 192.168.77.7
            www 300 IN AAAA fd77::7
            alias 300 IN CNAME www.example.test.
            """))), new Transport.DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        upstream.Start();
        await using var dns = await ClusterDns.StartAsync($"--Dns:Forwarders:0={upstream.LocalEndPoint}");
        await dns.Client.Services.CreateAsync(Alias("ext", "www.example.test"));
        await dns.Client.Services.CreateAsync(Alias("ext-chain", "alias.example.test"));
        await dns.Client.Services.CreateAsync(Alias("ext-gone", "nope.example.test"));
        await dns.AwaitAnswerAsync("ext-gone.shop.svc.cluster.local", DnsType.CNAME, r => r.Answer.Count == 1);

        var a = await dns.AskAsync("dig", "ext.shop.svc.cluster.local", "A");
        Assert.Equal("NOERROR", a.Status);
        Assert.Contains("aa", a.Flags);
        Assert.Contains("ra", a.Flags);
        Assert.Equal(["ext.shop.svc.cluster.local. 30 IN CNAME www.example.test.", "www.example.test. 300 IN A 192.168.77.7"], a.Answer);
        Assert.Equal(["ext.shop.svc.cluster.local. 30 IN CNAME www.example.test.", "www.example.test. 300 IN AAAA fd77::7"],
            (await dns.AskAsync("kdig", "+tcp", "ext.shop.svc.cluster.local", "AAAA")).Answer);
        // The upstream's own alias (its target compressed against its question) comes along.
        Assert.Equal([
            "ext-chain.shop.svc.cluster.local. 30 IN CNAME alias.example.test.",
            "alias.example.test. 300 IN CNAME www.example.test.",
            "www.example.test. 300 IN A 192.168.77.7"], (await dns.AskAsync("kdig", "ext-chain.shop.svc.cluster.local", "A")).Answer);
        // The target does not exist upstream: NXDOMAIN (RFC 6604), the alias kept.
        var gone = await dns.AskAsync("dig", "ext-gone.shop.svc.cluster.local", "A");
        Assert.Equal("NXDOMAIN", gone.Status);
        Assert.Equal(["ext-gone.shop.svc.cluster.local. 30 IN CNAME nope.example.test."], gone.Answer);
        // with the upstream zone's SOA, so that a resolver may cache the negative answer (RFC 2308 §3)
        Assert.StartsWith("example.test. 60 IN SOA ns.example.test. hostmaster.example.test. 1 ", Assert.Single(gone.Authority));
        Assert.Empty(a.Authority);
        // The target has no records of the type asked: NOERROR, the alias and the upstream's SOA.
        var noData = await dns.AskAsync("kdig", "ext.shop.svc.cluster.local", "TXT");
        Assert.Equal("NOERROR", noData.Status);
        Assert.Equal(["ext.shop.svc.cluster.local. 30 IN CNAME www.example.test."], noData.Answer);
        Assert.StartsWith("example.test. 60 IN SOA ns.example.test.", Assert.Single(noData.Authority));
        // No recursion asked: the alias alone, as without a forwarder.
        var norec = await dns.AskAsync("dig", "+norec", "ext.shop.svc.cluster.local", "A");
        Assert.Equal(["ext.shop.svc.cluster.local. 30 IN CNAME www.example.test."], norec.Answer);
        Assert.DoesNotContain("ra", norec.Flags);
    }

    /// <summary>
    /// An upstream has no say about our names (RFC 2181 §5.4.1): where its alias chain comes back
    /// into our zones, our own records answer from there on, for an ExternalName service and for
    /// a name forwarded as it is; records it sends about our names are left out, and never answer
    /// anyone from the cache.
    /// </summary>
    [Fact]
    public async Task AnUpstreamsChainBackIntoOurZones_IsAnsweredFromOurOwnRecords()
    {
        await using var upstream = new Transport.DnsListener(new Handling.QueryHandler(Zones.ZoneSnapshot.Build(Zones.ZoneFile.Parse("""
            $ORIGIN example.test.
            @ 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60
            into 300 IN CNAME web.shop.svc.cluster.local.
            gone 300 IN CNAME nothing.shop.svc.cluster.local.
            www 300 IN A 192.168.77.7
            _x._tcp.www 300 IN SRV 0 0 80 evil.cluster.local.
            $ORIGIN cluster.local.
            @ 300 IN SOA ns.cluster.local. hostmaster.cluster.local. 1 7200 1800 86400 60
            web.shop.svc 300 IN A 198.51.100.66
            evil 300 IN A 198.51.100.66
            """))), new Transport.DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        upstream.Start();
        await using var dns = await ClusterDns.StartAsync($"--Dns:Forwarders:0={upstream.LocalEndPoint}");
        var web = await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec { Network = "blue" },
        });
        var vip = Assert.Single(web.Status.ClusterIps);
        await dns.Client.Services.CreateAsync(Alias("into", "into.example.test"));
        await dns.AwaitAnswerAsync("into.shop.svc.cluster.local", DnsType.CNAME, r => r.Answer.Count == 1);

        // Through an ExternalName service: authoritative, our address for web, not the upstream's.
        var alias = await dns.AskAsync("dig", "into.shop.svc.cluster.local", "A");
        Assert.Equal("NOERROR", alias.Status);
        Assert.Contains("aa", alias.Flags);
        Assert.Equal([
            "into.shop.svc.cluster.local. 30 IN CNAME into.example.test.",
            "into.example.test. 300 IN CNAME web.shop.svc.cluster.local.",
            $"web.shop.svc.cluster.local. 30 IN A {vip}"], alias.Answer);
        // Forwarded as asked, over UDP and TCP: the same, not authoritative.
        foreach (var tool in new[] { "dig", "kdig" })
        {
            var plain = await dns.AskAsync(tool, "into.example.test", "A");
            Assert.Equal("NOERROR", plain.Status);
            Assert.DoesNotContain("aa", plain.Flags);
            Assert.Contains("ra", plain.Flags);
            Assert.Equal(["into.example.test. 300 IN CNAME web.shop.svc.cluster.local.", $"web.shop.svc.cluster.local. 30 IN A {vip}"], plain.Answer);
        }
        // A name of ours that does not exist: our NXDOMAIN and our SOA.
        var gone = await dns.AskAsync("dig", "gone.example.test", "A");
        Assert.Equal("NXDOMAIN", gone.Status);
        Assert.Equal(["gone.example.test. 300 IN CNAME nothing.shop.svc.cluster.local."], gone.Answer);
        Assert.True(Assert.Single(gone.Authority).StartsWith("cluster.local. 5 IN SOA ns.dns.cluster.local.", StringComparison.Ordinal), gone.Text);
        // A record about one of our names in the additional section is not passed on, nor kept.
        var srv = await dns.DigAsync("dig", "+noall", "+answer", "+additional", "_x._tcp.www.example.test", "SRV");
        Assert.Matches(@"_x\._tcp\.www\.example\.test\.\s+300\s+IN\s+SRV\s+0\s+0\s+80\s+evil\.cluster\.local\.", srv);
        Assert.DoesNotContain("198.51.100.66", srv);
        var evil = await dns.AskAsync("dig", "evil.cluster.local", "A");
        Assert.Equal("NXDOMAIN", evil.Status);
        Assert.True(evil.Authoritative);
    }

    [Fact]
    public async Task ExternalNameOutsideTheZones_ForAClientNotAllowedToForward_AnswersTheAliasAlone()
    {
        var upstreamHandler = new Handling.QueryHandler(Zones.ZoneSnapshot.Build(Zones.ZoneFile.Parse("""
            $ORIGIN example.test.
            @ 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60
            www 300 IN A 192.168.77.7
            """)));
        await using var upstream = new Transport.DnsListener(upstreamHandler, new Transport.DnsTransportOptions { Listen = TestPorts.Loopback(), Threads = 1 }, Microsoft.Extensions.Logging.Abstractions.NullLogger.Instance);
        upstream.Start();
        await using var dns = await ClusterDns.StartAsync($"--Dns:Forwarders:0={upstream.LocalEndPoint}", "--Dns:Forwarding:AllowedClients:0=198.51.100.0/24");
        await dns.Client.Services.CreateAsync(Alias("ext", "www.example.test"));
        await dns.AwaitAnswerAsync("ext.shop.svc.cluster.local", DnsType.CNAME, r => r.Answer.Count == 1);

        var a = await dns.AskAsync("dig", "ext.shop.svc.cluster.local", "A");
        Assert.Equal("NOERROR", a.Status);
        Assert.Equal(["ext.shop.svc.cluster.local. 30 IN CNAME www.example.test."], a.Answer);
        Assert.Equal(0, upstreamHandler.Metrics.Total);
    }

    [Fact]
    public async Task AliasChain_LongerThanTheLimit_EndsAtTheLimit()
    {
        await using var dns = await ClusterDns.StartAsync();
        await dns.Client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
        // hop-0 → hop-1 → … → hop-9 → web: ten aliases before the address.
        for (var i = 0; i < 10; i++)
        {
            await dns.Client.Services.CreateAsync(Alias($"hop-{i}", i == 9 ? "web.shop.svc.cluster.local" : $"hop-{i + 1}.shop.svc.cluster.local"));
        }
        await dns.AwaitAnswerAsync("hop-9.shop.svc.cluster.local", DnsType.CNAME, r => r.Answer.Count == 1);

        var far = await dns.AskAsync("dig", "hop-0.shop.svc.cluster.local", "A");
        Assert.Equal("NOERROR", far.Status);
        Assert.Equal(Enumerable.Range(0, Handling.QueryHandler.MaxChain).Select(i => $"hop-{i}.shop.svc.cluster.local. 30 IN CNAME hop-{i + 1}.shop.svc.cluster.local."), far.Answer);
        var near = await dns.AskAsync("dig", "hop-8.shop.svc.cluster.local", "A");
        Assert.Equal(3, near.Answer.Count);
        Assert.Matches(@"^web\.shop\.svc\.cluster\.local\. 30 IN A 10\.96\.", near.Answer[2]);
    }
}
