using System.Diagnostics;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// glibc's resolver (getent) in a network namespace whose resolv.conf names our server. The DNS
/// server runs inside the namespace on its loopback; it reaches the silo through a unix socket,
/// so the root namespace gets no address on any test network.
/// </summary>
public sealed class GlibcResolverTests
{
    [Fact]
    public async Task Getent_InANamespace_ResolvesAServiceName()
    {
        await using var silo = await SocketSilo.StartAsync();
        using var client = silo.Connect();
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16" } });
        var web = await client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec { Network = "blue", Ports = { new ServicePort { Name = "http", Port = 80 } } },
        });
        await using var resolver = await ResolverNamespace.StartAsync(silo);

        var (code, output) = await resolver.GetentAsync("hosts", "web.shop.svc.cluster.local");

        Assert.Equal(0, code);
        Assert.Matches($@"^{web.Status.ClusterIps[0].Replace(".", "\\.")}\s+web\.shop\.svc\.cluster\.local\s*$", output.Trim());
        var (missing, _) = await resolver.GetentAsync("hosts", "nope.shop.svc.cluster.local");
        Assert.Equal(2, missing); // getent: key not found
    }

    [Fact]
    public async Task Getent_FollowsAnExternalNameIntoTheZone_AndResolvesAPodRecord()
    {
        await using var silo = await SocketSilo.StartAsync();
        using var client = silo.Connect();
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = "node-a" }, Spec = new NodeSpec { UnderlayIp = "10.255.0.1" } });
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16" } });
        var web = await client.Services.CreateAsync(new Service { Metadata = new ObjectMeta { Name = "web", Namespace = "shop" }, Spec = new ServiceSpec { Network = "blue" } });
        await client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "alias", Namespace = "shop" },
            Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "web.shop.svc.cluster.local" },
        });
        var pod = await client.Endpoints.CreateAsync(new Endpoint
        {
            Metadata = new ObjectMeta { Name = "pod-0", Namespace = "shop" },
            Spec = new EndpointSpec { Network = "blue", Node = "node-a", Ready = true },
        });
        await using var resolver = await ResolverNamespace.StartAsync(silo);

        // glibc takes the address from the chased answer and names the alias beside the target.
        var (code, output) = await resolver.GetentAsync("hosts", "alias.shop.svc.cluster.local");
        Assert.Equal(0, code);
        Assert.Matches($@"^{web.Status.ClusterIps[0].Replace(".", "\\.")}\s+web\.shop\.svc\.cluster\.local\s+alias\.shop\.svc\.cluster\.local\s*$", output.Trim());

        var podName = $"{pod.Status.Ips[0].Replace('.', '-')}.shop.pod.cluster.local";
        (code, output) = await resolver.GetentAsync("hosts", podName);
        Assert.Equal(0, code);
        Assert.Matches($@"^{pod.Status.Ips[0].Replace(".", "\\.")}\s+{podName.Replace(".", "\\.")}\s*$", output.Trim());
    }

    /// <summary>
    /// An ExternalName service pointing outside the cluster: glibc does not chase a CNAME it gets
    /// without the target's address, so the server resolves the target through its forwarder (an
    /// authoritative server process beside it in the namespace) and answers both, as CoreDNS does.
    /// </summary>
    [Fact]
    public async Task Getent_ResolvesAnExternalNameOutsideTheZones_ThroughTheForwarder()
    {
        await using var silo = await SocketSilo.StartAsync();
        using var client = silo.Connect();
        await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
        await client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "ext", Namespace = "shop" },
            Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "www.example.test" },
        });
        var zone = Path.Combine("/tmp", $"wdns-{Guid.NewGuid():N}.zone");
        await File.WriteAllTextAsync(zone, """
            $ORIGIN example.test.
            @ 300 IN SOA ns.example.test. hostmaster.example.test. 1 7200 1800 86400 60
            www 300 IN A 192.168.77.7
            """);
        try
        {
            // The upstream listens on the namespace's own loopback: the port is private to it.
            await using var resolver = await ResolverNamespace.StartAsync(silo, zone, "--Dns:Forwarders:0=127.0.0.1:7853");

            var (code, output) = await resolver.GetentAsync("hosts", "ext.shop.svc.cluster.local");

            Assert.Equal(0, code);
            Assert.Matches(@"^192\.168\.77\.7\s+www\.example\.test\s+ext\.shop\.svc\.cluster\.local\s*$", output.Trim());
        }
        finally
        {
            File.Delete(zone);
        }
    }

    /// <summary>A network namespace whose resolv.conf names a DNS server process running inside it.</summary>
    private sealed class ResolverNamespace : IAsyncDisposable
    {
        private readonly string _name = "wdns" + Guid.NewGuid().ToString("N")[..8];
        private DnsServerProcess? _server;
        private DnsServerProcess? _upstream;

        /// <param name="upstreamZone">A zone file for an upstream server on 127.0.0.1:7853 in the namespace, or null.</param>
        /// <param name="settings">Further settings of the cluster DNS server.</param>
        public static async Task<ResolverNamespace> StartAsync(SocketSilo silo, string? upstreamZone = null, params string[] settings)
        {
            var ns = new ResolverNamespace();
            try
            {
                await Run("ip", "netns", "add", ns._name);
                await Run("ip", "netns", "exec", ns._name, "ip", "link", "set", "lo", "up");
                Directory.CreateDirectory($"/etc/netns/{ns._name}");
                await File.WriteAllTextAsync($"/etc/netns/{ns._name}/resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n");
                if (upstreamZone is not null)
                {
                    ns._upstream = DnsServerProcess.Start(ns._name, "--Dns:Listen=127.0.0.1:7853", "--Dns:ControlPlane=", $"--Dns:ZoneFiles:0={upstreamZone}");
                    await ns._upstream.WaitForLineAsync("DNS listening on", TimeSpan.FromSeconds(30));
                }
                ns._server = DnsServerProcess.Start(ns._name, ["--Dns:Listen=127.0.0.1:53", $"--Dns:ControlPlane=unix:{silo.Socket}", .. settings]);
                await ns._server.WaitForLineAsync("Zone snapshot", TimeSpan.FromSeconds(30));
                return ns;
            }
            catch
            {
                await ns.DisposeAsync();
                throw;
            }
        }

        public Task<(int Code, string Output)> GetentAsync(params string[] args) => Run("ip", ["netns", "exec", _name, "getent", .. args]);


        public async ValueTask DisposeAsync()
        {
            if (_server is not null) await _server.DisposeAsync();
            if (_upstream is not null) await _upstream.DisposeAsync();
            await Run("ip", "netns", "del", _name);
            if (Directory.Exists($"/etc/netns/{_name}")) Directory.Delete($"/etc/netns/{_name}", recursive: true);
        }
    }

    private static async Task<(int Code, string Output)> Run(string file, params string[] args)
    {
        var info = new ProcessStartInfo(file) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in args) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        var error = await process.StandardError.ReadToEndAsync();
        await process.WaitForExitAsync();
        return (process.ExitCode, output + error);
    }
}
