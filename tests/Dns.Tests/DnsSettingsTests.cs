using ControlPlane.Contracts.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Dns.Tests;

/// <summary>The settings added for reverse zones and pod records are checked before anything starts.</summary>
public sealed class DnsSettingsTests
{
    [Fact]
    public void BadServiceRangesAndReverseZones_AreAllReported()
    {
        var error = Assert.Throws<InvalidConfigurationException>(() => Configure(
            "--Dns:ServiceRanges:0=10.96.0.1/16", "--Dns:ServiceRanges:1=fd00:96::", "--Dns:ReverseZones:0=cluster.local"));
        Assert.Contains("Dns:ServiceRanges: '10.96.0.1/16'", error.Message);
        Assert.Contains("Dns:ServiceRanges: 'fd00:96::'", error.Message);
        Assert.Contains("Dns:ReverseZones: 'cluster.local'", error.Message);
    }

    [Theory]
    [InlineData("cluster.local")]
    [InlineData("Cluster.Local.")]
    [InlineData("set.cluster.local")]
    [InlineData("local")]
    public void ClusterSetZone_OverlappingTheClusterZone_IsRefused(string zone)
    {
        var error = Assert.Throws<InvalidConfigurationException>(() => Configure($"--Dns:ClusterSetZone={zone}"));
        Assert.Contains($"Dns:ClusterSetZone '{zone}' and Dns:Zone 'cluster.local' must be apart", error.Message);
    }

    [Theory]
    [InlineData(null, new[] { "cluster.local", "clusterset.local", "in-addr.arpa", "ip6.arpa" })]
    [InlineData("mesh.example", new[] { "cluster.local", "mesh.example", "in-addr.arpa", "ip6.arpa" })]
    [InlineData("", new[] { "cluster.local", "in-addr.arpa", "ip6.arpa" })]
    public void ClusterSetZone_DefaultElsewhereOrEmpty_IsAccepted_AndServed(string? zone, string[] apexes)
    {
        var services = Configure(zone is null ? [] : [$"--Dns:ClusterSetZone={zone}"]);
        // Before the first sync every zone served is SERVFAIL: the unsynced snapshot lists them.
        using var provider = services.BuildServiceProvider();
        var handler = provider.GetRequiredService<Handling.QueryHandler>();
        Assert.Equal(apexes, handler.Snapshot.Zones.Select(z => z.Apex));
    }

    /// <summary>A listen or forwarder address without its port (.NET would read port 0: a random port) is refused, naming the setting.</summary>
    [Theory]
    [InlineData("--Dns:Listen=127.0.0.1", "Dns:Listen '127.0.0.1' is not address:port")]
    [InlineData("--Dns:Listen=::1", "Dns:Listen '::1' is not address:port")]
    [InlineData("--Dns:Listen=[::1]", "Dns:Listen '[::1]' is not address:port")]
    [InlineData("--Dns:Forwarders:0=10.0.0.53", "Dns:Forwarders: '10.0.0.53' is not address:port")]
    public void AnAddressWithoutItsPort_IsRefused(string setting, string message)
    {
        var error = Assert.Throws<InvalidConfigurationException>(() => Configure(setting));
        Assert.Contains(message, error.Message);
    }

    [Theory]
    [InlineData("127.0.0.1:0")]
    [InlineData("[::1]:0")]
    [InlineData("0.0.0.0:0")]
    public void AnAddressWithItsPort_IsAccepted(string listen) => Configure($"--Dns:Listen={listen}");

    [Fact]
    public void UnknownPodRecordMode_IsRefused() =>
        Assert.Throws<InvalidConfigurationException>(() => Configure("--Dns:PodRecords=Sometimes"));

    [Fact]
    public void NoForwardedQueriesInFlightOverTcp_IsRefused() =>
        Assert.Contains("Dns:MaxTcpQueriesInFlight must be positive",
            Assert.Throws<InvalidConfigurationException>(() => Configure("--Dns:MaxTcpQueriesInFlight=0")).Message);

    [Fact]
    public void GoodSettings_AreAccepted() =>
        Configure("--Dns:ServiceRanges:0=10.96.0.0/12", "--Dns:ServiceRanges:1=fd00:96::/112", "--Dns:ReverseZones:0=in-addr.arpa", "--Dns:PodRecords=Disabled");

    [Fact]
    public void InsecurePodRecords_AreAccepted() => Configure("--Dns:PodRecords=Insecure");

    [Fact]
    public void AMisspelledSetting_IsRefusedNamingTheOneMeant()
    {
        // Ignored, it would leave the server on the default 127.0.0.1:53.
        Assert.Contains("Dns:Listn: Dns has no setting 'Listn' (did you mean Dns:Listen?)",
            Assert.Throws<InvalidConfigurationException>(() => Configure("--Dns:Listn=127.0.0.1:7712")).Message);
        Assert.Contains("Dns:RateLimit:ResponsesPerSecnd",
            Assert.Throws<InvalidConfigurationException>(() => Configure("--Dns:RateLimit:ResponsesPerSecnd=5")).Message);
    }

    [Theory]
    [InlineData("Ttl")]
    [InlineData("NegativeTtl")]
    public void ATtlWithItsTopBitSet_IsRefused(string setting)
    {
        // RFC 2181 section 8: resolvers would read it as 0.
        Assert.Contains($"Dns:{setting}=2147483648: a TTL is at most 2147483647 seconds",
            Assert.Throws<InvalidConfigurationException>(() => Configure($"--Dns:{setting}=2147483648")).Message);
        Configure($"--Dns:{setting}=2147483647");
    }

    private static IServiceCollection Configure(params string[] args)
    {
        var configuration = new ConfigurationBuilder().AddCommandLine([$"--Dns:Listen={TestPorts.Loopback()}", "--Dns:ControlPlane=unix:/tmp/dnsw-none.sock", .. args]).Build();
        return new ServiceCollection().AddClusterDns(configuration.GetSection("Dns"));
    }
}
