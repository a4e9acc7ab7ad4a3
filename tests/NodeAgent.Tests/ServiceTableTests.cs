using System.Text.RegularExpressions;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netns;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Services;
using ControlPlane.NodeAgent.Table;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>
/// The service part of the agent's table in a real kernel (a private namespace): the data chains
/// (lb_N, aff_T) that incremental programming leaves are exactly those a read-back would leave.
/// </summary>
public sealed partial class ServiceTableTests : IDisposable
{
    private readonly string _name = "wa" + Guid.NewGuid().ToString("N")[..8];
    private readonly NetworkNamespace _namespace;

    public ServiceTableTests()
    {
        Shell.Must("ip", "netns", "add", _name);
        _namespace = NetworkNamespace.Enter("/var/run/netns/" + _name);
    }

    private static readonly Dictionary<string, Network> Networks = new()
    {
        ["blue"] = new Network { Metadata = new ObjectMeta { Name = "blue" }, Spec = new NetworkSpec { Vni = 100, Ipv4Cidr = "10.0.0.0/16" } },
    };

    private static Service Service(string name, string vip, uint affinitySeconds = 0) => new()
    {
        Metadata = new ObjectMeta { Name = name, Namespace = "default" },
        Spec = new ServiceSpec
        {
            Network = "blue", Ports = { new ServicePort { Protocol = Protocol.Tcp, Port = 80, TargetPortNumber = 8080 } },
            SessionAffinity = affinitySeconds > 0 ? SessionAffinity.ClientIp : SessionAffinity.None, SessionAffinityTimeoutSeconds = affinitySeconds,
        },
        Status = new ServiceStatus { ClusterIps = { vip } },
    };

    private static ServiceEndpoints Endpoints(int count, int first = 1)
    {
        var endpoints = new ServiceEndpoints();
        for (var i = first; i < first + count; i++) endpoints.Endpoints.Add(new EndpointAddress { Name = $"e{i}", Ready = true, Ips = { $"10.61.0.{i}" } });
        return endpoints;
    }

    /// <summary>The table's chains as `nft` lists them, data chains only (lb_N, aff_T).</summary>
    private List<string> DataChains()
    {
        var listing = Shell.Run("ip", "netns", "exec", _name, "nft", "list", "table", "inet", AgentTable.Name);
        Assert.True(listing.Code == 0, listing.Output);
        return [.. DataChainLine().Matches(listing.Output).Select(m => m.Groups[1].Value).Order(StringComparer.Ordinal)];
    }

    [GeneratedRegex(@"chain ((?:lb|aff)_\d+) \{")]
    private static partial Regex DataChainLine();

    [Fact]
    public void DataChains_NoLongerJumpedTo_AreRemovedByTheNextApply_AsByARestart()
    {
        var web = Service("web", "10.96.0.10");
        var sticky = Service("sticky", "10.96.0.11", affinitySeconds: 60);
        using var nft = _namespace.Invoke(() => NftSocket.Open(AgentTable.Name));
        var programmer = new TableProgrammer(nft);
        _namespace.Invoke(() => programmer.Apply(
            [("default/web", ServiceCalculator.ForService(web, Endpoints(2), Networks)), ("default/sticky", ServiceCalculator.ForService(sticky, Endpoints(3, first: 100), Networks))], complete: true));
        Assert.Equal(["aff_60", "lb_2", "lb_3"], DataChains());

        // web's endpoint count grows 2 → 24 one at a time: only the chain in use stays.
        for (var count = 3; count <= 24; count++)
        {
            var group = ServiceCalculator.ForService(web, Endpoints(count), Networks);
            _namespace.Invoke(() => programmer.Apply([("default/web", group)], complete: false));
        }
        Assert.Equal(["aff_60", "lb_24", "lb_3"], DataChains());

        // web down to 3 (sticky's chain, which stays), sticky without affinity, then gone: a chain
        // stays while any service jumps to it, and goes with the last.
        _namespace.Invoke(() => programmer.Apply([("default/web", ServiceCalculator.ForService(web, Endpoints(3), Networks))], complete: false));
        Assert.Equal(["aff_60", "lb_3"], DataChains());
        _namespace.Invoke(() => programmer.Apply([("default/sticky", ServiceCalculator.ForService(Service("sticky", "10.96.0.11"), Endpoints(3, first: 100), Networks))], complete: false));
        Assert.Equal(["lb_3"], DataChains());
        _namespace.Invoke(() => programmer.Apply([("default/sticky", ElementGroup.Empty)], complete: false));
        Assert.Equal(["lb_3"], DataChains());

        // A chain removed and needed again is created again; with no endpoints left nothing remains.
        _namespace.Invoke(() => programmer.Apply([("default/web", ServiceCalculator.ForService(web, Endpoints(2), Networks))], complete: false));
        Assert.Equal(["lb_2"], DataChains());
        _namespace.Invoke(() => programmer.Apply([("default/web", ServiceCalculator.ForService(web, Endpoints(0), Networks))], complete: false));
        Assert.Empty(DataChains());

        // What a restarted agent reads back and converges to is what was there already.
        _namespace.Invoke(() => programmer.Apply([("default/web", ServiceCalculator.ForService(web, Endpoints(5), Networks))], complete: false));
        var chains = DataChains();
        var restarted = _namespace.Invoke(() => new TableProgrammer(nft).Apply([("default/web", ServiceCalculator.ForService(web, Endpoints(5), Networks))], complete: true));
        Assert.Equal((0, 0), (restarted.ElementsAdded, restarted.ElementsRemoved));
        Assert.Equal(["lb_5"], chains);
        Assert.Equal(chains, DataChains());
    }

    public void Dispose()
    {
        _namespace.Dispose();
        Shell.Run("ip", "netns", "del", _name);
    }
}
