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
        var id = Guid.NewGuid().ToString("N")[..8];
        var netns = "cpdns" + id;
        await using var silo = await SocketSilo.StartAsync();
        var socket = silo.Socket;
        Process? dns = null;
        try
        {
            using var client = silo.Connect();
            await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = "shop" } });
            await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 10, Ipv4Cidr = "10.244.0.0/16" } });
            var web = await client.Services.CreateAsync(new Service
            {
                Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
                Spec = new ServiceSpec { Network = "blue", Ports = { new ServicePort { Name = "http", Port = 80 } } },
            });

            await Run("ip", "netns", "add", netns);
            await Run("ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up");
            Directory.CreateDirectory($"/etc/netns/{netns}");
            await File.WriteAllTextAsync($"/etc/netns/{netns}/resolv.conf", "nameserver 127.0.0.1\noptions timeout:1 attempts:2\n");

            var info = new ProcessStartInfo("ip") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in (string[])["netns", "exec", netns, "dotnet", Path.Combine(AppContext.BaseDirectory, "ControlPlane.DnsServer.dll"),
                         "--Dns:Listen=127.0.0.1:53", $"--Dns:ControlPlane=unix:{socket}"]) info.ArgumentList.Add(arg);
            dns = Process.Start(info)!;
            var synced = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            var log = new List<string>();
            dns.OutputDataReceived += (_, e) =>
            {
                if (e.Data is null) return;
                lock (log) log.Add(e.Data);
                if (e.Data.Contains("Zone snapshot", StringComparison.Ordinal)) synced.TrySetResult();
            };
            dns.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (log) log.Add(e.Data); };
            dns.BeginOutputReadLine();
            dns.BeginErrorReadLine();
            if (await Task.WhenAny(synced.Task, Task.Delay(TimeSpan.FromSeconds(30))) != synced.Task)
            {
                Assert.Fail("the DNS server did not sync:\n" + string.Join('\n', log));
            }

            var (code, output) = await Run("ip", "netns", "exec", netns, "getent", "hosts", "web.shop.svc.cluster.local");

            Assert.Equal(0, code);
            Assert.Matches($@"^{web.Status.ClusterIps[0].Replace(".", "\\.")}\s+web\.shop\.svc\.cluster\.local\s*$", output.Trim());
            var (missing, _) = await Run("ip", "netns", "exec", netns, "getent", "hosts", "nope.shop.svc.cluster.local");
            Assert.Equal(2, missing); // getent: key not found
        }
        finally
        {
            if (dns is { HasExited: false })
            {
                dns.Kill(entireProcessTree: true);
                await dns.WaitForExitAsync();
            }
            await Run("ip", "netns", "del", netns);
            if (Directory.Exists($"/etc/netns/{netns}")) Directory.Delete($"/etc/netns/{netns}", recursive: true);
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
