using System.Net;
using ControlPlane.Contracts.V1;
using ControlPlane.Dns.Wire;
using ControlPlane.Dns.Zones;

namespace ControlPlane.Dns.Tests;

/// <summary>Pod records a-b-c-d.&lt;namespace&gt;.pod.&lt;zone&gt; (and IPv6 with dashes): verified against the endpoints, insecure, or off.</summary>
public sealed class PodRecordTests
{
    private static Endpoint Pod(string name, string ns) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = ns },
        Spec = new EndpointSpec { Network = "blue", Node = "node-a", Ready = true },
    };

    private static string Dashed(string ip) => ip.Replace('.', '-').Replace(':', '-');

    [Fact]
    public async Task PodName_AnswersOnlyAnAddressOfAnEndpointInThatNamespace()
    {
        await using var dns = await ClusterDns.StartAsync();
        await dns.Client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "other" } });
        var pod = await dns.Client.Endpoints.CreateAsync(Pod("pod-0", "shop"));
        await dns.Client.Endpoints.CreateAsync(Pod("pod-1", "other"));
        var v4 = pod.Status.Ips.Single(ip => !ip.Contains(':'));
        var v6 = pod.Status.Ips.Single(ip => ip.Contains(':'));
        var name4 = $"{Dashed(v4)}.shop.pod.cluster.local";
        var name6 = $"{Dashed(v6)}.shop.pod.cluster.local";
        await dns.AwaitAnswerAsync(name4, DnsType.A, r => r.Answer.Count == 1);

        var a = await dns.AskAsync("dig", "+norec", name4, "A");
        Assert.Equal("NOERROR", a.Status);
        Assert.True(a.Authoritative);
        Assert.Equal([$"{name4}. 30 IN A {v4}"], a.Answer);
        var aaaa = await dns.AskAsync("kdig", name6, "AAAA");
        Assert.Equal([$"{name6}. 30 IN AAAA {v6}"], aaaa.Answer);
        // Any spelling of the IPv6 address names the same pod: here every group written out.
        var full = string.Join('-', IPAddress.Parse(v6).GetAddressBytes().Chunk(2).Select(g => $"{g[0] << 8 | g[1]:x}"));
        Assert.Equal([$"{full}.shop.pod.cluster.local. 30 IN AAAA {v6}"], (await dns.AskAsync("dig", $"{full}.shop.pod.cluster.local", "AAAA")).Answer);
        // The name exists, the type does not: NODATA with the SOA.
        var noData = await dns.AskAsync("dig", name4, "AAAA");
        Assert.Equal("NOERROR", noData.Status);
        Assert.Empty(noData.Answer);
        Assert.StartsWith("cluster.local. 5 IN SOA", Assert.Single(noData.Authority));

        // Verified: the address must belong to an endpoint of that namespace.
        var elsewhere = await dns.AskAsync("dig", $"{Dashed(v4)}.other.pod.cluster.local", "A");
        Assert.Equal("NXDOMAIN", elsewhere.Status);
        Assert.StartsWith("cluster.local. 5 IN SOA", Assert.Single(elsewhere.Authority));
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("dig", "10-244-255-254.shop.pod.cluster.local", "A")).Status);
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("dig", $"0{Dashed(v4)}.shop.pod.cluster.local", "A")).Status);
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("dig", $"{Dashed(v4)}.nowhere.pod.cluster.local", "A")).Status);

        // Gone with its endpoint.
        await dns.Client.Endpoints.DeleteAsync("shop", "pod-0");
        await dns.AwaitAnswerAsync(name4, DnsType.A, r => r.Rcode == (int)Rcode.NXDomain);
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("kdig", name6, "AAAA")).Status);
    }

    /// <summary>
    /// Pod addresses are kept apart from the other records (a large cluster's bulk): a change of
    /// other records keeps every pod name answered, and a change of addresses moves the serial
    /// (also after an endpoint change that moved no address, a label).
    /// </summary>
    [Fact]
    public async Task PodNames_SurviveChangesOfOtherRecords_AndTheSerialMovesWithTheAddresses()
    {
        await using var dns = await ClusterDns.StartAsync();
        var pod = await dns.Client.Endpoints.CreateAsync(Pod("pod-0", "shop"));
        var name = $"{Dashed(pod.Status.Ips.Single(ip => !ip.Contains(':')))}.shop.pod.cluster.local";
        await dns.AwaitAnswerAsync(name, DnsType.A, r => r.Answer.Count == 1);
        var first = await SerialAsync(dns);

        // Records change, addresses do not: the pod name stays.
        await dns.Client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec { Type = ServiceType.ClusterIp, Network = "blue", Selector = { ["app"] = "web" } },
        });
        await dns.AwaitAnswerAsync("web.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 1);
        Assert.Single((await dns.AskAsync("dig", name, "A")).Answer);
        var withService = await SerialAsync(dns);
        Assert.True(withService > first);

        // A label moves no address; a second pod then moves the addresses and the serial.
        var relabelled = Pod("pod-0", "shop");
        relabelled.Metadata.Labels["tier"] = "front";
        await dns.Client.Endpoints.UpdateAsync(relabelled);
        var second = await dns.Client.Endpoints.CreateAsync(Pod("pod-1", "shop"));
        var secondName = $"{Dashed(second.Status.Ips.Single(ip => !ip.Contains(':')))}.shop.pod.cluster.local";
        await dns.AwaitAnswerAsync(secondName, DnsType.A, r => r.Answer.Count == 1);
        var withSecond = await SerialAsync(dns);
        Assert.True(withSecond > withService);
        Assert.Single((await dns.AskAsync("dig", name, "A")).Answer);

        await dns.Client.Endpoints.DeleteAsync("shop", "pod-0");
        await dns.AwaitAnswerAsync(name, DnsType.A, r => r.Rcode == (int)Rcode.NXDomain);
        Assert.True(await SerialAsync(dns) > withSecond);
        Assert.Single((await dns.AskAsync("dig", secondName, "A")).Answer);
    }

    private static async Task<uint> SerialAsync(ClusterDns dns) =>
        uint.Parse((await dns.DigAsync("dig", "+short", "cluster.local", "SOA")).Trim().Split(' ')[2], System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>Two indexes are the same when they answer the same names: mode, TTL and each namespace's addresses.</summary>
    [Fact]
    public void PodIndexes_AreTheSame_OnlyWithTheSameAddressesInTheSameNamespaces()
    {
        PodIndex Index(uint ttl, params (string, string)[] pods) => new("cluster.local", ttl, pods);
        var index = Index(30, ("shop", "10.244.0.5"), ("shop", "fd00:244::5"), ("other", "10.244.0.6"));
        Assert.True(index.SameAs(Index(30, ("other", "10.244.0.6"), ("shop", "fd00:244:0::5"), ("shop", "10.244.0.5"))));
        Assert.False(index.SameAs(Index(30, ("shop", "10.244.0.5"), ("shop", "fd00:244::5"), ("other", "10.244.0.7"))));
        Assert.False(index.SameAs(Index(30, ("shop", "10.244.0.5"), ("shop", "fd00:244::5"), ("shop", "10.244.0.6"))));
        Assert.False(index.SameAs(Index(30, ("shop", "10.244.0.5"), ("shop", "fd00:244::5"))));
        Assert.False(index.SameAs(Index(60, ("shop", "10.244.0.5"), ("shop", "fd00:244::5"), ("other", "10.244.0.6"))));
        Assert.False(index.SameAs(null));
        Assert.False(index.SameAs(new PodIndex("cluster.local", 30, Array.Empty<(string, string)>(), PodRecordMode.Insecure)));
    }

    /// <summary>
    /// Insecure (CoreDNS's "pods insecure", the Kubernetes DNS specification's §2.6): any valid
    /// address label in any namespace label, no endpoint needed.
    /// </summary>
    [Fact]
    public async Task PodRecords_Insecure_AnswerAnyAddressInAnyNamespace()
    {
        await using var dns = await ClusterDns.StartAsync("--Dns:PodRecords=Insecure");

        var a = await dns.AskAsync("dig", "10-1-2-3.anywhere.pod.cluster.local", "A");
        Assert.Equal("NOERROR", a.Status);
        Assert.True(a.Authoritative);
        Assert.Equal(["10-1-2-3.anywhere.pod.cluster.local. 30 IN A 10.1.2.3"], a.Answer);
        Assert.Equal(["fd00-1--5.shop.pod.cluster.local. 30 IN AAAA fd00:1::5"], (await dns.AskAsync("kdig", "fd00-1--5.shop.pod.cluster.local", "AAAA")).Answer);
        // The name exists for its own family only; the namespace level exists as an empty non-terminal.
        Assert.Equal("NOERROR", (await dns.AskAsync("dig", "10-1-2-3.anywhere.pod.cluster.local", "AAAA")).Status);
        Assert.Equal("NOERROR", (await dns.AskAsync("dig", "anywhere.pod.cluster.local", "A")).Status);
        // Not an address: NXDOMAIN.
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("dig", "10-1-2-300.anywhere.pod.cluster.local", "A")).Status);
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("dig", "web.anywhere.pod.cluster.local", "A")).Status);
        Assert.Equal("NXDOMAIN", (await dns.AskAsync("dig", "x.10-1-2-3.anywhere.pod.cluster.local", "A")).Status);
    }

    [Fact]
    public async Task PodRecords_Disabled_AreNxDomain()
    {
        await using var dns = await ClusterDns.StartAsync("--Dns:PodRecords=Disabled");
        var pod = await dns.Client.Endpoints.CreateAsync(Pod("pod-0", "shop"));
        // A change made after the endpoint: once it is answered, the feed has passed the endpoint too.
        await dns.Client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "after", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
        await dns.AwaitAnswerAsync("after.shop.svc.cluster.local", DnsType.A, r => r.Answer.Count == 1);

        var answer = await dns.AskAsync("dig", $"{Dashed(pod.Status.Ips[0])}.shop.pod.cluster.local", "A");
        Assert.Equal("NXDOMAIN", answer.Status);
        Assert.Empty(answer.Answer);
    }
}
