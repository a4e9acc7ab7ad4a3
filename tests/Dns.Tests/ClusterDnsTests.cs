using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Tests;

/// <summary>The Kubernetes DNS schema end to end: objects created through the API, answers read with dig and kdig.</summary>
public sealed class ClusterDnsTests
{
    private static Endpoint Pod(string name, bool ready = true, string hostname = "", string subdomain = "")
    {
        var endpoint = new Endpoint
        {
            Metadata = new ObjectMeta { Name = name, Namespace = "shop", Labels = { ["app"] = "db" } },
            Spec = new EndpointSpec { Network = "blue", Node = "node-a", Ready = ready, Hostname = hostname, Subdomain = subdomain, Ports = { new NamedPort { Name = "pg", Port = 5432 } } },
        };
        return endpoint;
    }

    private static Service Svc(string name, ServiceType type, bool publishNotReady = false, params string[] families) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "shop" },
        Spec = new ServiceSpec
        {
            Type = type, Network = "blue", Selector = { ["app"] = "db" }, PublishNotReadyAddresses = publishNotReady,
            Ports = { new ServicePort { Name = "postgres", Port = 5432, TargetPortName = "pg" } },
            IpFamilies = { families }, IpFamilyPolicy = families.Length > 1 ? "RequireDualStack" : "",
        },
    };

    [Fact]
    public async Task EveryRecordKind_IsAnsweredPerTheSpecification()
    {
        await using var dns = await ClusterDns.StartAsync();
        var web = await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec { Network = "blue", Selector = { ["app"] = "web" }, Ports = { new ServicePort { Name = "http", Port = 80 } } },
        });
        var vip = web.Status.ClusterIps[0];
        var db0 = await dns.Client.Endpoints.CreateAsync(Pod("db-0", hostname: "db-0", subdomain: "db"));
        var db1 = await dns.Client.Endpoints.CreateAsync(Pod("db-1"));
        await dns.Client.Endpoints.CreateAsync(Pod("db-2", ready: false));
        await dns.Client.Services.CreateAsync(Svc("db", ServiceType.Headless, families: ["IPv4", "IPv6"]));
        await dns.Client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "ext", Namespace = "shop" }, Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "example.org" } });
        await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 2);

        // ClusterIP: A, SRV for named ports, PTR.
        var a = await dns.DigAsync("dig", "+norec", "web.shop.svc.cluster.local", "A");
        Assert.Contains("status: NOERROR", a);
        Assert.Contains("flags: qr aa", a);
        Assert.Matches($@"web\.shop\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+{vip.Replace(".", "\\.")}", a);
        var srv = await dns.DigAsync("dig", "+short", "_http._tcp.web.shop.svc.cluster.local", "SRV");
        Assert.Equal("0 100 80 web.shop.svc.cluster.local.", srv.Trim());
        var ptr = await dns.DigAsync("dig", "+short", "-x", vip);
        Assert.Equal("web.shop.svc.cluster.local.", ptr.Trim());

        // Headless: every ready address, hostname records, SRV per endpoint with the resolved target port.
        var headless = (await dns.DigAsync("dig", "+short", "db.shop.svc.cluster.local", "A")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { db0.Status.Ips[0], db1.Status.Ips[0] }.Order(), headless.Order());
        var aaaa = (await dns.DigAsync("dig", "+short", "db.shop.svc.cluster.local", "AAAA")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { db0.Status.Ips[1], db1.Status.Ips[1] }.Order(), aaaa.Order());
        Assert.Equal(db0.Status.Ips[0], (await dns.DigAsync("dig", "+short", "db-0.db.shop.svc.cluster.local", "A")).Trim());
        var derived = db1.Status.Ips[0].Replace('.', '-');
        Assert.Equal(db1.Status.Ips[0], (await dns.DigAsync("dig", "+short", $"{derived}.db.shop.svc.cluster.local", "A")).Trim());
        var headlessSrv = (await dns.DigAsync("dig", "+short", "_postgres._tcp.db.shop.svc.cluster.local", "SRV")).Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(new[] { "0 100 5432 db-0.db.shop.svc.cluster.local.", $"0 100 5432 {derived}.db.shop.svc.cluster.local." }.Order(), headlessSrv.Order());
        Assert.Equal("db-0.db.shop.svc.cluster.local.", (await dns.DigAsync("dig", "+short", "-x", db0.Status.Ips[0])).Trim());
        // The targets' addresses ride in the additional section (RFC 2782), read by another client.
        var additional = await dns.DigAsync("kdig", "+noall", "+additional", "_postgres._tcp.db.shop.svc.cluster.local", "SRV");
        foreach (var (owner, ip) in new[] { ("db-0", db0.Status.Ips[0]), ("db-0", db0.Status.Ips[1]), (derived, db1.Status.Ips[0]), (derived, db1.Status.Ips[1]) })
        {
            Assert.Matches($@"{owner}\.db\.shop\.svc\.cluster\.local\.\s+30\s+IN\s+A{{1,4}}\s+{System.Text.RegularExpressions.Regex.Escape(ip)}", additional);
        }
        var clusterIpAdditional = await dns.DigAsync("dig", "+noall", "+additional", "_http._tcp.web.shop.svc.cluster.local", "SRV");
        Assert.Matches($@"web\.shop\.svc\.cluster\.local\.\s+30\s+IN\s+A\s+{vip.Replace(".", "\\.")}", clusterIpAdditional);

        // ExternalName, schema version, apex.
        Assert.Equal("example.org.", (await dns.DigAsync("dig", "+short", "ext.shop.svc.cluster.local", "CNAME")).Trim());
        Assert.Equal("\"1.1.0\"", (await dns.DigAsync("dig", "+short", "dns-version.cluster.local", "TXT")).Trim());
        Assert.Equal("ns.dns.cluster.local.", (await dns.DigAsync("dig", "+short", "cluster.local", "NS")).Trim());
        Assert.StartsWith("ns.dns.cluster.local. hostmaster.cluster.local.", (await dns.DigAsync("dig", "+short", "cluster.local", "SOA")).Trim());
    }

    [Fact]
    public async Task HeadlessSrv_ResolvesANamedTargetPortByNameAndProtocol_AsTheDataPathDoes()
    {
        await using var dns = await ClusterDns.StartAsync();
        var pod = await dns.Client.Endpoints.CreateAsync(new Endpoint
        {
            Metadata = new ObjectMeta { Name = "resolver-0", Namespace = "shop", Labels = { ["app"] = "resolver" } },
            Spec = new EndpointSpec { Network = "blue", Node = "node-a", Ready = true, Ports = { new NamedPort { Name = "dns", Port = 5353, Protocol = Protocol.Udp } } },
        });
        await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "resolver", Namespace = "shop" },
            Spec = new ServiceSpec
            {
                Type = ServiceType.Headless, Network = "blue", Selector = { ["app"] = "resolver" },
                Ports =
                {
                    new ServicePort { Name = "over-udp", Port = 53, Protocol = Protocol.Udp, TargetPortName = "dns" },
                    new ServicePort { Name = "over-tcp", Port = 53, Protocol = Protocol.Tcp, TargetPortName = "dns" },
                },
            },
        });
        await dns.AwaitAnswerAsync("resolver.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 1);

        var derived = pod.Status.Ips[0].Replace('.', '-');
        Assert.Equal($"0 100 5353 {derived}.resolver.shop.svc.cluster.local.", (await dns.DigAsync("dig", "+short", "_over-udp._udp.resolver.shop.svc.cluster.local", "SRV")).Trim());
        // The endpoint's "dns" port is UDP: the TCP service port reaches nothing, so DNS advertises nothing for it.
        Assert.Contains("status: NXDOMAIN", await dns.DigAsync("kdig", "_over-tcp._tcp.resolver.shop.svc.cluster.local", "SRV"));
    }

    /// <summary>
    /// &lt;namespace&gt;.svc.&lt;zone&gt; exists while the namespace does, services or not (CoreDNS
    /// answers the same): NODATA with the SOA, where a name under no namespace is NXDOMAIN.
    /// </summary>
    [Fact]
    public async Task ANamespacesName_ExistsWhileTheNamespaceDoes_WithOrWithoutServices()
    {
        await using var dns = await ClusterDns.StartAsync();
        Assert.Contains("status: NXDOMAIN", await dns.DigAsync("dig", "quiet.svc.cluster.local", "A"));

        await dns.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "quiet" } });
        await dns.AwaitAnswerAsync("quiet.svc.cluster.local", DnsType.A, r => r.Rcode == 0);
        var nodata = await dns.DigAsync("dig", "quiet.svc.cluster.local", "A");
        Assert.Contains("status: NOERROR", nodata);
        Assert.Contains("ANSWER: 0", nodata);
        Assert.Matches(@"cluster\.local\.\s+5\s+IN\s+SOA", nodata);
        Assert.Contains("status: NOERROR", await dns.DigAsync("kdig", "QUIET.svc.cluster.local", "SRV"));
        Assert.Contains("status: NXDOMAIN", await dns.DigAsync("kdig", "nothing.quiet.svc.cluster.local", "A"));

        await dns.Client.Namespaces.DeleteAsync("", "quiet");
        await dns.AwaitAnswerAsync("quiet.svc.cluster.local", DnsType.A, r => r.Rcode == 3);
    }

    [Fact]
    public async Task Negatives_AreNxDomainOrNoData_WithTheSoaAndItsNegativeTtl()
    {
        await using var dns = await ClusterDns.StartAsync();
        var nx = await dns.DigAsync("dig", "nothing.shop.svc.cluster.local", "A");
        Assert.Contains("status: NXDOMAIN", nx);
        Assert.Matches(@"cluster\.local\.\s+5\s+IN\s+SOA", nx);
        var nodata = await dns.DigAsync("dig", "dns-version.cluster.local", "A");
        Assert.Contains("status: NOERROR", nodata);
        Assert.Contains("ANSWER: 0", nodata);
        Assert.Matches(@"cluster\.local\.\s+5\s+IN\s+SOA", nodata);
        Assert.Contains("status: REFUSED", await dns.DigAsync("dig", "example.com", "A"));
    }

    [Fact]
    public async Task TcpEdnsAndTruncation_WithKdigAndDig()
    {
        await using var dns = await ClusterDns.StartAsync();
        for (var i = 0; i < 40; i++) await dns.Client.Endpoints.CreateAsync(Pod($"db-{i}"));
        await dns.Client.Services.CreateAsync(Svc("db", ServiceType.Headless));
        await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 40 || r.Truncated && r.Rcode == 0);

        // 40 A records do not fit 512 bytes: plain UDP is truncated (dig +ignore shows TC).
        var udp = await dns.DigAsync("dig", "+noedns", "+ignore", "db.shop.svc.cluster.local", "A");
        Assert.Matches(@"flags: qr aa tc rd; QUERY: 1, ANSWER: 0", udp);
        // EDNS with a large buffer fits; the OPT record is echoed.
        var edns = await dns.DigAsync("kdig", "+bufsize=4096", "db.shop.svc.cluster.local", "A");
        Assert.Contains("EDNS PSEUDOSECTION", edns);
        Assert.Equal(40, edns.Split('\n').Count(l => l.Contains("\tA\t", StringComparison.Ordinal) || System.Text.RegularExpressions.Regex.IsMatch(l, @"\sIN\s+A\s")) );
        // TCP: everything, and several queries on one connection (kdig sends them in sequence).
        var tcp = await dns.DigAsync("kdig", "+tcp", "+keepopen", "+noedns", "db.shop.svc.cluster.local", "A", "web.shop.svc.cluster.local", "A");
        Assert.Equal(40, System.Text.RegularExpressions.Regex.Matches(tcp, @"db\.shop\.svc\.cluster\.local\.\s+30\s+IN\s+A\s").Count);
        Assert.Contains("NXDOMAIN", tcp);
    }

    [Fact]
    public async Task ChangesThroughTheApi_AreAnsweredWithin100ms_AndTheSerialMovesOnlyOnChange()
    {
        await using var dns = await ClusterDns.StartAsync();
        var serial = Serial(await dns.DigAsync("dig", "+short", "cluster.local", "SOA"));

        var service = await dns.Client.Services.CreateAsync(Svc("db", ServiceType.ClusterIp));
        var took = await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 1);
        Assert.True(took < TimeSpan.FromMilliseconds(100), $"took {took.TotalMilliseconds:F1} ms");
        var afterCreate = Serial(await dns.DigAsync("dig", "+short", "cluster.local", "SOA"));
        Assert.True(afterCreate > serial);

        // A change that touches nothing DNS shows (a label) leaves the serial alone.
        service.Metadata.Labels["team"] = "data";
        await dns.Client.Services.UpdateAsync(service);
        Assert.Equal(afterCreate, Serial(await dns.DigAsync("dig", "+short", "cluster.local", "SOA")));
        await dns.Client.Services.DeleteAsync("shop", "db");
        took = await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.A, r => r.Rcode == 3);
        Assert.True(took < TimeSpan.FromMilliseconds(100), $"took {took.TotalMilliseconds:F1} ms");
        Assert.True(Serial(await dns.DigAsync("dig", "+short", "cluster.local", "SOA")) > afterCreate);
    }

    /// <summary>
    /// The Kubernetes conformance test "DNS should provide DNS for ExternalName services": an
    /// ExternalName service answers its CNAME, a changed target the new one, and once the service
    /// becomes ClusterIP its virtual IP; back to ExternalName, the CNAME again.
    /// </summary>
    [Fact]
    public async Task AnExternalNameService_ChangedToClusterIpAndBack_AnswersWhatItIsNow()
    {
        await using var dns = await ClusterDns.StartAsync();
        const string Name = "alias.shop.svc.cluster.local";
        var alias = new Service { Metadata = new ObjectMeta { Name = "alias", Namespace = "shop" }, Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "foo.example.com" } };
        await dns.Client.Services.CreateAsync(alias);
        await dns.AwaitAnswerAsync(Name, DnsType.CNAME, r => r.Answer.Count == 1);
        Assert.Equal(["foo.example.com."], (await dns.AskAsync("dig", Name, "CNAME")).Answer.Select(a => a.Split('\t', ' ').Last()));

        alias.Spec.ExternalName = "bar.example.com";
        await dns.Client.Services.UpdateAsync(alias);
        await dns.AwaitAnswerAsync(Name, DnsType.CNAME, r => r.Answer.Count == 1 && r.Answer.Exists(a => a.Contains("bar.example.com", StringComparison.Ordinal)));

        var clusterIp = Svc("alias", ServiceType.ClusterIp);
        var vip = Assert.Single((await dns.Client.Services.UpdateAsync(clusterIp)).Status.ClusterIps);
        // Until the change arrives, an A query still gets the alias (one CNAME record): wait for the address.
        await dns.AwaitAnswerAsync(Name, DnsType.A, r => r.Answer.Count == 1 && r.Answer.Exists(a => a.EndsWith(vip, StringComparison.Ordinal)));
        var answer = await dns.AskAsync("kdig", Name, "A");
        Assert.Equal(("NOERROR", vip), (answer.Status, Assert.Single(answer.Answer).Split('\t', ' ').Last()));
        Assert.Empty((await dns.AskAsync("dig", Name, "CNAME")).Answer);

        await dns.Client.Services.UpdateAsync(alias);
        await dns.AwaitAnswerAsync(Name, DnsType.A, r => r.Answer.Count == 1 && r.Answer.Exists(a => a.Contains("bar.example.com", StringComparison.Ordinal)));
        Assert.DoesNotContain(vip, (await dns.DigAsync("dig", "+short", Name, "A")), StringComparison.Ordinal);
    }

    /// <summary>
    /// The serial follows the store's position: many changes in a few seconds and then a restart
    /// of the DNS server never take it back (it was the clock at start plus one per change), and a
    /// restart with nothing committed in between serves the same serial.
    /// </summary>
    [Fact]
    public async Task Serial_NeverGoesDownAcrossRestarts_AndStaysPutWhenNothingChanged()
    {
        await using var dns = await ClusterDns.StartAsync();
        for (var i = 0; i < 12; i++)
        {
            await dns.Client.Services.CreateAsync(Svc($"s{i}", ServiceType.ClusterIp));
            await dns.AwaitAnswerAsync($"s{i}.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 1);
        }
        var before = Serial(await dns.DigAsync("dig", "+short", "cluster.local", "SOA"));

        await dns.RestartDnsAsync();
        var position = await PositionAsync(dns);
        var after = Serial(await dns.DigAsync("dig", "+short", "cluster.local", "SOA"));
        Assert.True((int)(after - before) >= 0, $"the serial went from {before} down to {after}");

        await dns.RestartDnsAsync();
        var again = Serial(await dns.DigAsync("dig", "+short", "cluster.local", "SOA"));
        if (await PositionAsync(dns) == position) Assert.Equal(after, again);
        else Assert.True((int)(again - after) >= 0, $"the serial went from {after} down to {again}");
    }

    /// <summary>
    /// Every zone — the cluster zone, the ClusterSet zone and the reverse zones — names the one
    /// server that answers them alike, ns.dns.cluster.local, as NS target and SOA MNAME, and that
    /// name resolves to the address the server answers on (no lame delegation; its address comes
    /// along in the NS answer's additional section). There is no name per zone.
    /// </summary>
    [Fact]
    public async Task TheNameserverOfEveryZone_IsOneNameWithAnAddress()
    {
        await using var dns = await ClusterDns.StartAsync();
        var address = dns.Endpoint.Address.ToString();
        foreach (var zone in new[] { "cluster.local", "clusterset.local", "96.10.in-addr.arpa", "244.10.in-addr.arpa" })
        {
            var ns = await dns.AskAsync("dig", zone, "NS");
            Assert.Equal([$"{zone}. 30 IN NS ns.dns.cluster.local."], ns.Answer);
            Assert.Matches($@"ns\.dns\.cluster\.local\.\s+30\s+IN\s+A\s+{System.Text.RegularExpressions.Regex.Escape(address)}", ns.Text);
            Assert.StartsWith("ns.dns.cluster.local. hostmaster.cluster.local. ", (await Short(dns, zone, "SOA")).Single());
        }
        Assert.Equal([address], await Short(dns, "ns.dns.cluster.local", "A"));
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("kdig", "ns.dns.clusterset.local", "A")).Status);
    }

    /// <summary>
    /// NOTIMP (another opcode) and FORMERR (no question) carry the query's OPT record back
    /// (RFC 6891 §7), and NOTIMP its question too, as dig sends and reads them.
    /// </summary>
    [Fact]
    public async Task ErrorReplies_KeepTheQuestionAndTheOptRecord()
    {
        await using var dns = await ClusterDns.StartAsync();
        var notify = await dns.AskAsync("dig", "+opcode=notify", "+edns=0", "cluster.local", "SOA");
        Assert.Equal("NOTIMP", notify.Status);
        Assert.Contains("QUERY: 1,", notify.Text);
        Assert.Contains("OPT PSEUDOSECTION", notify.Text);
        Assert.Contains(";cluster.local.", notify.Text);

        var headerOnly = await dns.AskAsync("dig", "+header-only", "+edns=0", "cluster.local", "SOA");
        Assert.Equal("FORMERR", headerOnly.Status);
        Assert.Contains("QUERY: 0,", headerOnly.Text);
        Assert.Contains("OPT PSEUDOSECTION", headerOnly.Text);

        // Without OPT in the query, none in the reply.
        var plain = await dns.AskAsync("dig", "+opcode=notify", "+noedns", "cluster.local", "SOA");
        Assert.Equal("NOTIMP", plain.Status);
        Assert.DoesNotContain("OPT PSEUDOSECTION", plain.Text);
    }

    private static async Task<string> PositionAsync(ClusterDns dns) => (await dns.Client.Namespaces.ListAsync(new ListRequest())).ResumeToken;

    [Fact]
    public async Task ReadinessAndPublishNotReady_DecideWhichAddressesAHeadlessServiceAnswers()
    {
        await using var dns = await ClusterDns.StartAsync();
        var ready = await dns.Client.Endpoints.CreateAsync(Pod("db-0"));
        var notReady = await dns.Client.Endpoints.CreateAsync(Pod("db-1", ready: false));
        await dns.Client.Services.CreateAsync(Svc("db", ServiceType.Headless));
        await dns.Client.Services.CreateAsync(Svc("db-all", ServiceType.Headless, publishNotReady: true));

        await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.A, r => r.Answer.SequenceEqual([$"db.shop.svc.cluster.local. 30 IN A {ready.Status.Ips[0]}"]));
        await dns.AwaitAnswerAsync("db-all.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 2);

        notReady.Spec.Ready = true;
        await dns.Client.Endpoints.UpdateAsync(notReady);
        await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 2);
    }

    [Fact]
    public async Task HeadlessService_RotatesItsAddresses_SoClientsTakingTheFirstSpreadOverAll()
    {
        await using var dns = await ClusterDns.StartAsync();
        var pods = new[] { await dns.Client.Endpoints.CreateAsync(Pod("db-0")), await dns.Client.Endpoints.CreateAsync(Pod("db-1")), await dns.Client.Endpoints.CreateAsync(Pod("db-2")) };
        await dns.Client.Services.CreateAsync(Svc("db", ServiceType.Headless, families: ["IPv4", "IPv6"]));
        await dns.AwaitAnswerAsync("db.shop.svc.cluster.local", DnsType.AAAA, r => r.Answer.Count == 3);
        foreach (var (type, family) in new[] { ("A", 0), ("AAAA", 1) })
        {
            var all = pods.Select(p => p.Status.Ips[family]).Order().ToArray();
            // Three answers in a row start with three different addresses, each answer holding all of them in one cycle.
            var answers = new List<string[]>();
            for (var i = 0; i < 3; i++)
            {
                answers.Add((await dns.DigAsync("dig", "+short", "db.shop.svc.cluster.local", type)).Split('\n', StringSplitOptions.RemoveEmptyEntries));
            }
            Assert.All(answers, answer => Assert.Equal(all, answer.Order()));
            Assert.Equal(all, answers.Select(answer => answer[0]).Order());
            Assert.All(answers, answer => Assert.Equal(answers[0].Concat(answers[0]).SkipWhile(ip => ip != answer[0]).Take(3), answer));
        }
        // A set of one stays as it is, and so do other types' sets (SRV keeps its order).
        var srv = new List<string>();
        for (var i = 0; i < 3; i++) srv.Add(await dns.DigAsync("dig", "+short", "_postgres._tcp.db.shop.svc.cluster.local", "SRV"));
        Assert.Single(srv.Distinct());
    }

    [Fact]
    public async Task HeadlessService_AnswersOnlyTheEndpointAddressesOfItsFamilies()
    {
        await using var dns = await ClusterDns.StartAsync();
        var pods = new[] { await dns.Client.Endpoints.CreateAsync(Pod("db-0")), await dns.Client.Endpoints.CreateAsync(Pod("db-1")) };
        Assert.All(pods, p => Assert.Equal(2, p.Status.Ips.Count)); // dual-stack network: one address of each family
        await dns.Client.Services.CreateAsync(Svc("db4", ServiceType.Headless, families: ["IPv4"]));
        await dns.Client.Services.CreateAsync(Svc("db6", ServiceType.Headless, families: ["IPv6"]));
        await dns.Client.Services.CreateAsync(Svc("db46", ServiceType.Headless, families: ["IPv4", "IPv6"]));
        await dns.AwaitAnswerAsync("db46.shop.svc.cluster.local", DnsType.AAAA, r => r.Answer.Count == 2);
        var v4 = pods.Select(p => p.Status.Ips[0]).Order().ToArray();
        var v6 = pods.Select(p => p.Status.Ips[1]).Order().ToArray();

        // IPv4 only: no AAAA (NODATA), whatever the endpoints hold.
        var noAaaa = await dns.AskAsync("dig", "db4.shop.svc.cluster.local", "AAAA");
        Assert.Equal("NOERROR", noAaaa.Status);
        Assert.Empty(noAaaa.Answer);
        Assert.Single(noAaaa.Authority);
        Assert.Equal(v4, await Short(dns, "db4.shop.svc.cluster.local", "A"));
        // IPv6 only: the reverse; its derived hostnames come from the IPv6 address.
        Assert.Empty(await Short(dns, "db6.shop.svc.cluster.local", "A"));
        Assert.Equal(v6, await Short(dns, "db6.shop.svc.cluster.local", "AAAA"));
        var derived = $"{pods[0].Status.Ips[1].Replace(':', '-')}.db6.shop.svc.cluster.local";
        Assert.Equal([pods[0].Status.Ips[1]], await Short(dns, derived, "AAAA"));
        Assert.Contains($"0 100 5432 {derived}.", await Short(dns, "_postgres._tcp.db6.shop.svc.cluster.local", "SRV"));
        // Both families: both.
        Assert.Equal(v4, await Short(dns, "db46.shop.svc.cluster.local", "A"));
        Assert.Equal(v6, await Short(dns, "db46.shop.svc.cluster.local", "AAAA"));
    }

    private static async Task<string[]> Short(ClusterDns dns, string name, string type) =>
        [.. (await dns.DigAsync("kdig", "+short", name, type)).Split('\n', StringSplitOptions.RemoveEmptyEntries).Order()];

    private static uint Serial(string soa) => uint.Parse(soa.Trim().Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture);
}
