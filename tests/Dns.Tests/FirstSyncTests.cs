using System.Net;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// The DNS server program started before the control plane: SERVFAIL (and a log saying so) until
/// the first snapshot, answers after it, and the last snapshot once the control plane goes away.
/// </summary>
public sealed class FirstSyncTests
{
    private const string BeforeSync = "no snapshot yet, answering SERVFAIL";
    private const string FromLastSnapshot = "answering from the last snapshot";

    [Fact]
    public async Task ControlPlaneUnreachable_BeforeTheFirstSync_IsServFailAndLoggedAsSuch_AfterItTheLastSnapshotAnswers()
    {
        await using var silo = SocketSilo.Create();
        var listen = new IPEndPoint(IPAddress.Loopback, TestPorts.Next());
        await using var server = DnsServerProcess.Start(null, $"--Dns:Listen={listen}", $"--Dns:ControlPlane=unix:{silo.Socket}");

        await server.WaitForLineAsync(BeforeSync, TimeSpan.FromSeconds(30));
        Assert.Equal(0, server.Count(FromLastSnapshot));
        Assert.Equal("SERVFAIL", Dig.Parse(await Dig.RunAsync(listen, "dig", "web.shop.svc.cluster.local", "A")).Status);
        // Every reverse name too: which networks are ours is not known yet.
        Assert.Equal("SERVFAIL", Dig.Parse(await Dig.RunAsync(listen, "kdig", "-x", "10.96.0.1")).Status);
        Assert.Equal("SERVFAIL", Dig.Parse(await Dig.RunAsync(listen, "dig", "-x", "8.8.8.8")).Status);

        await silo.StartAgainAsync();
        await server.WaitForLineAsync("Zone snapshot", TimeSpan.FromSeconds(30));
        Assert.Equal("NXDOMAIN", Dig.Parse(await Dig.RunAsync(listen, "dig", "web.shop.svc.cluster.local", "A")).Status);
        Assert.Equal("NXDOMAIN", Dig.Parse(await Dig.RunAsync(listen, "kdig", "-x", "10.96.0.1")).Status);
        Assert.Equal("REFUSED", Dig.Parse(await Dig.RunAsync(listen, "dig", "-x", "8.8.8.8")).Status);

        await silo.StopAsync();
        await server.WaitForLineAsync(FromLastSnapshot, TimeSpan.FromSeconds(30));
        var soa = Dig.Parse(await Dig.RunAsync(listen, "dig", "cluster.local", "SOA"));
        Assert.Equal("NOERROR", soa.Status);
        Assert.Single(soa.Answer);
    }
}
