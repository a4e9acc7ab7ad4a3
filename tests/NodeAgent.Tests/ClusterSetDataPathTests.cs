using System.Diagnostics;
using ControlPlane.Contracts.V1;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// Two clusters of one ClusterSet on one underlay: each its own silo and two hosts with agents.
/// An exported service is reached from the other cluster through its ClusterSetIP, over the
/// shared VXLAN overlay, spread over every exporting cluster's endpoints; a lost cluster's
/// endpoints leave after the grace period and come back with it; an unexport withdraws them.
/// </summary>
public sealed class ClusterSetDataPathTests
{
    private static readonly TimeSpan Short = TimeSpan.FromSeconds(1);

    private static string[] Member(string id, string serviceRange) =>
        [$"--ClusterSet:ClusterId={id}", "--ClusterSet:Name=test-set", $"--ControlPlane:ServiceIpv4Cidr={serviceRange}",
         "--ClusterSet:PeerGracePeriod=00:00:03", "--ClusterSet:PeerBookmarkSeconds=1"];

    private static async Task PopulateAsync(Cluster cluster, string cidr)
    {
        await cluster.Client.Namespaces.CreateAsync(new Namespace { Metadata = new() { Name = "shop" } });
        await cluster.Client.Networks.CreateAsync(new Network { Metadata = new() { Name = "pods" }, Spec = new() { Vni = 100, Ipv4Cidr = cidr } });
    }

    private static async Task<string> ServeAsync(Cluster cluster, PodSockets servers, int host, string name)
    {
        var attached = await cluster.AttachAsync(host, name, "pods", labels: new Dictionary<string, string> { ["app"] = "web" },
            ports: [new NamedPort { Name = "http", Protocol = Protocol.Tcp, Port = 8080 }], ns: "shop");
        servers.Serve("/var/run/netns/" + cluster.Pod("shop" + name), name, 8080);
        return attached.Ips[0];
    }

    private static async Task ExportAsync(Cluster cluster)
    {
        await cluster.Client.Services.CreateAsync(new Service
        {
            Metadata = new() { Name = "web", Namespace = "shop" },
            Spec = new() { Network = "pods", Selector = { ["app"] = "web" }, Ports = { new ServicePort { Name = "http", Protocol = Protocol.Tcp, Port = 80, TargetPortName = "http" } } },
        });
        await cluster.Client.ServiceExports.CreateAsync(new ServiceExport { Metadata = new() { Name = "web", Namespace = "shop" } });
    }

    /// <summary>Which servers answer 30 connections from the client to address:80.</summary>
    private static async Task<HashSet<string>> AnswersAsync(string clientPod, string address)
    {
        var probes = await Task.WhenAll(Enumerable.Range(0, 30).Select(_ => PodSockets.TcpAsync(clientPod, address, 80, Short)));
        return [.. probes.Where(p => p.Result == ProbeResult.Answered).Select(p => p.Answer.Split(' ')[0])];
    }

    /// <summary>The DNS server as its own process in host n's namespace, on the host's underlay address, following the cluster's silo.</summary>
    private static DnsProcess StartDns(Cluster cluster, int n)
    {
        var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["netns", "exec", cluster.Host(n), "dotnet", Path.Combine(AppContext.BaseDirectory, "ControlPlane.DnsServer.dll"),
                     $"--Dns:Listen={cluster.HostAddress(n)}:53", $"--Dns:ControlPlane=unix:{cluster.SiloSocket}", "--Logging:LogLevel:Default=Warning"])
        {
            info.ArgumentList.Add(arg);
        }
        var process = Process.Start(info)!;
        process.OutputDataReceived += (_, _) => { };
        process.ErrorDataReceived += (_, _) => { };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        return new DnsProcess(process);
    }

    private sealed class DnsProcess(Process process) : IDisposable
    {
        public void Dispose()
        {
            if (!process.HasExited) { process.Kill(entireProcessTree: true); process.WaitForExit(); }
            process.Dispose();
        }
    }

    private static NetworkPolicy IngressFrom(string cidr) => new()
    {
        Metadata = new() { Name = "web-ingress", Namespace = "shop" },
        Spec = new()
        {
            PodSelector = new() { MatchLabels = { ["app"] = "web" } },
            Ingress = { new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { IpBlock = new() { Cidr = cidr } } } } },
        },
    };

    [Fact]
    public async Task ExportedService_ReachableAcrossClusters_SpreadOverBoth_WithdrawnWhenLostOrUnexported()
    {
        await using var a = await Cluster.StartAsync(new Cluster.Layout(2, SiloArgs: Member("a", "10.96.0.0/16")));
        await using var b = await Cluster.StartAsync(new Cluster.Layout(2, a.Fabric, 11, Member("b", "10.97.0.0/16")));
        using var servers = new PodSockets();
        await PopulateAsync(a, "10.10.0.0/16");
        await PopulateAsync(b, "10.20.0.0/16");
        await ServeAsync(a, servers, 1, "web-a1");
        await ServeAsync(a, servers, 2, "web-a2");
        await b.AttachAsync(1, "client", "pods", ns: "shop");
        var client = "/var/run/netns/" + b.Pod("shopclient");
        await ExportAsync(a);
        await a.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "b" }, Spec = new() { Addresses = { "unix:" + b.SiloSocket } } });
        await b.Client.ClusterPeers.CreateAsync(new ClusterPeer { Metadata = new() { Name = "a" }, Spec = new() { Addresses = { "unix:" + a.SiloSocket } } });

        ServiceImport? import = null;
        await Eventually.HoldsAsync(async () => (import = (await b.Client.ServiceImports.ListAsync(new ListRequest())).ServiceImports.FirstOrDefault()) is not null
            && import.Status.Clusters.Sum(c => c.Endpoints.Count) == 2, TimeSpan.FromSeconds(20), () => $"b imports {import}");
        var clusterSetIp = import!.Spec.Ips.Single();
        Assert.StartsWith("10.97.", clusterSetIp);

        // A workload in b resolves the name through clusterset.local (dig, against b's DNS server on its host)...
        using var dns = StartDns(b, 1);
        var answer = "";
        await Eventually.HoldsAsync(() => Task.FromResult((answer = Shell.Run("ip", "netns", "exec", b.Pod("shopclient"), "dig", $"@{b.HostAddress(1)}", "+short", "+time=1", "+tries=1",
                "web.shop.svc.clusterset.local", "A").Output.Trim()) == clusterSetIp), TimeSpan.FromSeconds(20), () => $"dig answered '{answer}', not {clusterSetIp}");

        // (a, the exporting cluster, imports its own export too: its own DNS server answers with a's ClusterSetIP)
        using var dnsA = StartDns(a, 1);
        var ownIp = (await a.Client.ServiceImports.GetAsync("shop", "web")).Spec.Ips.Single();
        Assert.StartsWith("10.96.", ownIp);
        await Eventually.HoldsAsync(() => Task.FromResult((answer = Shell.Run("ip", "netns", "exec", a.Pod("shopweb-a1"), "dig", $"@{a.HostAddress(1)}", "+short", "+time=1", "+tries=1",
                "web.shop.svc.clusterset.local", "A").Output.Trim()) == ownIp), TimeSpan.FromSeconds(20), () => $"a's dig answered '{answer}', not {ownIp}");

        // ...and the ClusterSetIP reaches a's endpoints on both of a's hosts, across the overlay.
        HashSet<string> answers = [];
        await Eventually.HoldsAsync(async () => (answers = await AnswersAsync(client, clusterSetIp)).SetEquals(["web-a1", "web-a2"]), TimeSpan.FromSeconds(20),
            () => $"answers {string.Join(',', answers)}\n{b.Ruleset(1)}\n{b.Diagnostics("shopclient")}");

        // Network policy in a sees b's workloads as addresses (ipBlock peers): allowed from b's range, refused otherwise.
        var policy = await a.Client.NetworkPolicies.CreateAsync(IngressFrom("10.20.0.0/16"));
        await Eventually.HoldsAsync(async () => (answers = await AnswersAsync(client, clusterSetIp)).SetEquals(["web-a1", "web-a2"]), TimeSpan.FromSeconds(20),
            () => $"answers {string.Join(',', answers)} with ingress allowed from b's range");
        policy.Spec = IngressFrom("10.30.0.0/16").Spec;
        await a.Client.NetworkPolicies.UpdateAsync(policy);
        await Eventually.HoldsAsync(async () => (answers = await AnswersAsync(client, clusterSetIp)).Count == 0, TimeSpan.FromSeconds(20),
            () => $"answers {string.Join(',', answers)} with ingress allowed only from another range");
        await a.Client.NetworkPolicies.DeleteAsync("shop", "web-ingress");

        // b exports the service too: connections spread over both clusters.
        await ServeAsync(b, servers, 2, "web-b1");
        await ExportAsync(b);
        await Eventually.HoldsAsync(async () => (answers = await AnswersAsync(client, clusterSetIp)).SetEquals(["web-a1", "web-a2", "web-b1"]), TimeSpan.FromSeconds(20),
            () => $"answers {string.Join(',', answers)}");

        // a's control plane goes away: after the grace period b withdraws a's endpoints; they come back with it.
        // (timed from the start of the stop: a stopping silo closes its watches before its process exits)
        var lost = Stopwatch.StartNew();
        await a.StopSiloAsync();
        await Eventually.HoldsAsync(async () => (answers = await AnswersAsync(client, clusterSetIp)).SetEquals(["web-b1"]), TimeSpan.FromSeconds(20),
            () => $"answers {string.Join(',', answers)} after a was lost");
        Assert.True(lost.Elapsed >= TimeSpan.FromSeconds(2.5), $"a's endpoints left after {lost.Elapsed}, within the 3 s grace period");
        await a.StartSiloAsync();
        await Eventually.HoldsAsync(async () => (answers = await AnswersAsync(client, clusterSetIp)).SetEquals(["web-a1", "web-a2", "web-b1"]), TimeSpan.FromSeconds(30),
            () => $"answers {string.Join(',', answers)} after a returned");

        // Unexported in a: only b's endpoint is left.
        await a.Client.ServiceExports.DeleteAsync("shop", "web");
        await Eventually.HoldsAsync(async () => (answers = await AnswersAsync(client, clusterSetIp)).SetEquals(["web-b1"]), TimeSpan.FromSeconds(20),
            () => $"answers {string.Join(',', answers)} after a unexported");
    }
}
