using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Dns.Tests;

/// <summary>The settings added for reverse zones and pod records are checked before anything starts.</summary>
public sealed class DnsSettingsTests
{
    [Fact]
    public void BadServiceRangesAndReverseZones_AreAllReported()
    {
        var error = Assert.Throws<InvalidOperationException>(() => Configure(
            "--Dns:ServiceRanges:0=10.96.0.1/16", "--Dns:ServiceRanges:1=fd00:96::", "--Dns:ReverseZones:0=cluster.local"));
        Assert.Contains("Dns:ServiceRanges: '10.96.0.1/16'", error.Message);
        Assert.Contains("Dns:ServiceRanges: 'fd00:96::'", error.Message);
        Assert.Contains("Dns:ReverseZones: 'cluster.local'", error.Message);
    }

    [Fact]
    public void UnknownPodRecordMode_IsRefused() =>
        Assert.Throws<InvalidOperationException>(() => Configure("--Dns:PodRecords=Insecure"));

    [Fact]
    public void GoodSettings_AreAccepted() =>
        Configure("--Dns:ServiceRanges:0=10.96.0.0/12", "--Dns:ServiceRanges:1=fd00:96::/112", "--Dns:ReverseZones:0=in-addr.arpa", "--Dns:PodRecords=Disabled");

    private static void Configure(params string[] args)
    {
        var configuration = new ConfigurationBuilder().AddCommandLine([$"--Dns:Listen={TestPorts.Loopback()}", "--Dns:ControlPlane=unix:/tmp/dnsw-none.sock", .. args]).Build();
        new ServiceCollection().AddClusterDns(configuration.GetSection("Dns"));
    }
}
