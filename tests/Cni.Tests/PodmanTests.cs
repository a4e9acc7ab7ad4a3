using System.Diagnostics;
using System.Text.Json.Nodes;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Cni.Tests;

/// <summary>podman runs containers on two hosts through the plugin (it calls VERSION, ADD and DEL; never CHECK).</summary>
[Collection("cni")]
public sealed class PodmanTests
{
    [Fact]
    public async Task TwoContainersOnTwoHosts_ReachEachOtherAndAServiceByDnsName_RmCleansUp()
    {
        await using var cluster = await CniCluster.StartAsync(hosts: 2, dns: true);
        var podman = new Podman(cluster);
        var (web, client) = ($"cni{cluster.Id}web", $"cni{cluster.Id}cli");
        try
        {
            var network = (await cluster.CreateNetworkAsync("podman", 401)).Metadata.Name;
            var webConf = cluster.WriteConfList($"cni{cluster.Id}w", network, host: 2, new JsonObject { ["labels"] = new JsonObject { ["app"] = "web" } });
            var clientConf = cluster.WriteConfList($"cni{cluster.Id}c", network, host: 1, new JsonObject { ["labels"] = new JsonObject { ["app"] = "client" } });
            var service = new Service
            {
                Metadata = new ObjectMeta { Namespace = "default", Name = "web" },
                Spec = new ServiceSpec { Type = ServiceType.ClusterIp, Network = network, Selector = { ["app"] = "web" }, Ports = { new ServicePort { Name = "http", Port = 80, TargetPortNumber = 8080 } } },
            };
            await cluster.Client.Services.CreateAsync(service);

            podman.Must("run", "-d", "--name", web, "--network", webConf, "--rootfs", podman.Rootfs, "/bin/httpd", "-f", "-p", "8080", "-h", "/www");
            podman.Must("run", "-d", "--name", client, "--network", clientConf, "--rootfs", podman.Rootfs, "/bin/httpd", "-f", "-p", "8080", "-h", "/www");
            // podman passes the container's name as K8S_POD_NAME: the endpoints are named after the containers.
            var webEndpoint = await cluster.Client.Endpoints.GetAsync("default", web);
            var clientEndpoint = await cluster.Client.Endpoints.GetAsync("default", client);
            Assert.Equal("host-2", webEndpoint.Spec.Node);
            Assert.Equal("host-1", clientEndpoint.Spec.Node);
            var sandboxes = new[] { web, client }.Select(c => podman.Must("inspect", "--format", "{{.NetworkSettings.SandboxKey}}", c).Trim()).ToList();
            Assert.All(sandboxes, s => Assert.True(File.Exists(s), s));

            Assert.Equal("hello from a container\n", Fetch(podman, client, $"http://{webEndpoint.Status.Ips[0]}:8080/"));
            Assert.Equal("hello from a container\n", Fetch(podman, web, $"http://{clientEndpoint.Status.Ips[0]}:8080/"));
            var resolv = podman.Must("exec", client, "cat", "/etc/resolv.conf");
            Assert.Contains($"nameserver {CniCluster.DnsAddress}", resolv, StringComparison.Ordinal);
            Assert.Contains("default.svc.cluster.local", resolv, StringComparison.Ordinal);
            Assert.Equal("hello from a container\n", Fetch(podman, client, "http://web.default.svc.cluster.local/"));
            Assert.Equal("hello from a container\n", Fetch(podman, client, "http://web/"));

            var hostEnds = Enumerable.Range(1, 2).ToDictionary(n => n, n => HostEnds(cluster, n));
            Assert.Single(hostEnds[1]);
            Assert.Single(hostEnds[2]);
            podman.Must("rm", "-f", web, client);

            foreach (var name in new[] { web, client })
            {
                var gone = await Assert.ThrowsAsync<RpcException>(() => cluster.Client.Endpoints.GetAsync("default", name));
                Assert.Equal(StatusCode.NotFound, gone.StatusCode);
            }
            Assert.Empty(HostEnds(cluster, 1));
            Assert.Empty(HostEnds(cluster, 2));
            Assert.All(sandboxes, s => Assert.False(File.Exists(s), $"{s} is still there"));
            Assert.Empty(Directory.EnumerateFiles(Path.Combine(cluster.VarLib, "cni", "results")));
            Assert.Equal("", podman.Must("ps", "-aq").Trim());
        }
        finally
        {
            podman.Run("rm", "-af");
        }
    }

    /// <summary>
    /// wget from inside a container. Service programming and the DNS server's first sync are
    /// asynchronous to the attach: a refused or unanswered request is tried again, for 30 s at most.
    /// </summary>
    private static string Fetch(Podman podman, string container, string url)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            // busybox's wget crashes on -T when the connection fails: timeout(1) bounds it instead.
            var outcome = podman.Run("exec", container, "timeout", "5", "wget", "-q", "-O", "-", url);
            if (outcome.Code == 0) return outcome.Output;
            if (clock.Elapsed > TimeSpan.FromSeconds(30))
            {
                var inside = podman.Run("exec", container, "sh", "-c", "ip addr; ip route; cat /etc/resolv.conf");
                throw new InvalidOperationException($"{container} cannot fetch {url}: {outcome}\n{inside.Output}{inside.Error}");
            }
        }
    }

    private static List<string> HostEnds(CniCluster cluster, int host) =>
        Shell.Must("ip", "-n", cluster.Host(host), "-o", "link", "show").Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(line => line.Split(':')[1].Trim().Split('@')[0]).Where(name => name.StartsWith("cpe", StringComparison.Ordinal)).ToList();
}
