using System.Net;
using DnsClient;

namespace ControlPlane.Cli.Tests;

/// <summary>netctl resolve against the silo's embedded cluster DNS.</summary>
public sealed class ResolveTests
{
    [Fact]
    public async Task Resolve_ExampleService_AnswersItsVirtualIpsSrvAndPtr()
    {
        var port = Silo.FreePort(26100 + Random.Shared.Next(0, 800));
        await using var silo = await Silo.StartAsync(dnsPort: port);
        Assert.Equal(0, (await Netctl.RunAsync(silo, "apply", "-f", RepositoryPaths.Examples)).ExitCode);
        var service = await silo.Client.Services.GetAsync("shop", "web");
        await WaitForRecordAsync(port, "web.shop.svc.cluster.local");
        var dns = $"127.0.0.1:{port}";

        var a = await Netctl.RunAsync(["resolve", "web.shop.svc.cluster.local", "--dns", dns]);
        Assert.True(a.ExitCode == 0, a.ToString());
        Assert.StartsWith($";; {dns}: status NOERROR, 1 answer(s), authoritative", a.Output);
        Assert.Matches($@"web\.shop\.svc\.cluster\.local\. \d+ IN A {Regex(service.Status.ClusterIps[0])}", a.Output);

        var aaaa = await Netctl.RunAsync(["resolve", "web.shop.svc.cluster.local", "AAAA"], environment: new Dictionary<string, string> { ["NETCTL_DNS"] = dns });
        Assert.Matches($@"IN AAAA {Regex(service.Status.ClusterIps[1])}", aaaa.Output);

        var srv = await Netctl.RunAsync(["resolve", "_http._tcp.web.shop.svc.cluster.local", "srv", "--dns", dns, "--tcp"]);
        Assert.Contains("IN SRV 0 100 80 web.shop.svc.cluster.local.", srv.Output);

        var ptr = await Netctl.RunAsync(["resolve", service.Status.ClusterIps[0], "--dns", dns]);
        Assert.Contains("IN PTR web.shop.svc.cluster.local.", ptr.Output);

        var missing = await Netctl.RunAsync(["resolve", "nope.shop.svc.cluster.local", "--dns", dns]);
        Assert.Equal(1, missing.ExitCode);
        Assert.Contains("status NXDOMAIN, 0 answer(s)", missing.Output);
    }

    private static string Regex(string text) => System.Text.RegularExpressions.Regex.Escape(text);

    /// <summary>
    /// The DNS server follows the control plane's watch on its own schedule and offers no event of
    /// its own: ask (bounded) until the name answers.
    /// </summary>
    private static async Task WaitForRecordAsync(int port, string name)
    {
        var client = new LookupClient(new LookupClientOptions(new NameServer(IPAddress.Loopback, port)) { UseCache = false, Timeout = TimeSpan.FromSeconds(1), Retries = 0, ThrowDnsErrors = false });
        for (var attempt = 0; attempt < 100; attempt++)
        {
            try
            {
                var response = await client.QueryAsync(name, QueryType.A);
                if (response.Answers.Count > 0) return;
            }
            catch (DnsResponseException)
            {
            }
            await Task.Delay(100);
        }
        throw new TimeoutException($"{name} never answered on port {port}");
    }
}
