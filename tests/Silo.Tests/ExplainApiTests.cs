using Grpc.Core;
using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>NetworkPolicies/Explain over the real API: decisions from stored state, precise errors for bad input.</summary>
public sealed class ExplainApiTests
{
    private static ExplainRequest Request(string from, string to, Protocol protocol = Protocol.Tcp, uint port = 5432) => new()
    {
        Source = new ExplainPeer { Namespace = "ns", Name = from },
        Destination = new ExplainPeer { Namespace = "ns", Name = to },
        Protocol = protocol,
        Port = port,
    };

    [Fact]
    public async Task Explain_NamesTheDecidingPolicyAndRule_AndFollowsChanges()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "web", "net", "node-a", labels: ("app", "web")));
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "db", "net", "node-a", labels: ("app", "db")));
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "batch", "net", "node-a", labels: ("app", "batch")));

        var open = await silo.Client.ExplainAsync(Request("web", "db"));
        Assert.True(open.Allowed);
        Assert.False(open.Ingress.Isolated);

        await silo.Client.NetworkPolicies.CreateAsync(new NetworkPolicy
        {
            Metadata = new ObjectMeta { Namespace = "ns", Name = "db" },
            Spec = new NetworkPolicySpec
            {
                PodSelector = new LabelSelector { MatchLabels = { ["app"] = "db" } },
                Ingress =
                {
                    new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchLabels = { ["app"] = "batch" } } } }, Ports = { new NetworkPolicyPort { Number = 9000 } } },
                    new NetworkPolicyRule { Peers = { new NetworkPolicyPeer { PodSelector = new LabelSelector { MatchLabels = { ["app"] = "web" } } } }, Ports = { new NetworkPolicyPort { Number = 5432 } } },
                },
            },
        });
        var allowed = await silo.Client.ExplainAsync(Request("web", "db"));
        Assert.True(allowed.Allowed);
        Assert.True(allowed.Ingress.Isolated);
        Assert.Equal(["ns/db"], allowed.Ingress.Policies);
        Assert.Equal(1u, Assert.Single(allowed.Ingress.AllowedBy).Rule);

        // The data path never stands between an endpoint and itself; neither does Explain.
        var self = await silo.Client.ExplainAsync(Request("db", "db"));
        Assert.True(self.Allowed, self.Reason);
        Assert.Contains("itself", self.Reason);

        var denied = await silo.Client.ExplainAsync(Request("batch", "db"));
        Assert.False(denied.Allowed);
        Assert.Empty(denied.Ingress.AllowedBy);
        Assert.Contains("ns/db", denied.Reason);

        var outside = await silo.Client.ExplainAsync(new ExplainRequest
        {
            Source = new ExplainPeer { Ip = "192.168.7.7" }, Destination = new ExplainPeer { Namespace = "ns", Name = "db" }, Protocol = Protocol.Tcp, Port = 5432,
        });
        Assert.False(outside.Allowed);
        Assert.True(outside.Egress.Allowed, "an address outside every endpoint has no egress policy");
        // The endpoint's own node (its underlay address) is never filtered, either way.
        var fromNode = await silo.Client.ExplainAsync(new ExplainRequest
        {
            Source = new ExplainPeer { Ip = "10.255.0.1" }, Destination = new ExplainPeer { Namespace = "ns", Name = "db" }, Protocol = Protocol.Tcp, Port = 5432,
        });
        Assert.True(fromNode.Allowed, fromNode.Reason);
        Assert.Contains("node-a", fromNode.Reason);

        await silo.Client.Networks.CreateAsync(Network("other", 101, "10.21.0.0/16"));
        var elsewhere = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "elsewhere", "other", "node-a", labels: ("app", "web")));
        var across = await silo.Client.ExplainAsync(Request("elsewhere", "db"));
        Assert.False(across.Allowed);
        Assert.True(across.Ingress.Allowed, "the policy allows app=web; the networks do not");
        Assert.Contains("different networks", across.Reason);

        // An address alone stands for the endpoint that holds it, as on the wire: its policies
        // and its network count (on either side, on any network).
        static ExplainPeer At(Endpoint endpoint) => new() { Ip = endpoint.Status.Ips[0] };
        var (web, db, batch) = (await silo.Client.Endpoints.GetAsync("ns", "web"), await silo.Client.Endpoints.GetAsync("ns", "db"), await silo.Client.Endpoints.GetAsync("ns", "batch"));
        var toAddress = await silo.Client.ExplainAsync(new ExplainRequest { Source = Request("batch", "db").Source, Destination = At(db), Protocol = Protocol.Tcp, Port = 5432 });
        Assert.False(toAddress.Allowed, toAddress.Reason);
        Assert.Equal(["ns/db"], toAddress.Ingress.Policies);
        var fromAddress = await silo.Client.ExplainAsync(new ExplainRequest { Source = At(web), Destination = Request("web", "db").Destination, Protocol = Protocol.Tcp, Port = 5432 });
        Assert.True(fromAddress.Allowed, fromAddress.Reason);
        Assert.Equal(1u, Assert.Single(fromAddress.Ingress.AllowedBy).Rule);
        Assert.False((await silo.Client.ExplainAsync(new ExplainRequest { Source = At(batch), Destination = At(db), Protocol = Protocol.Tcp, Port = 5432 })).Allowed);
        var acrossByAddress = await silo.Client.ExplainAsync(new ExplainRequest { Source = At(elsewhere), Destination = At(db), Protocol = Protocol.Tcp, Port = 5432 });
        Assert.Contains("different networks", acrossByAddress.Reason);
        // A service's virtual IP is no endpoint: which one answers is chosen per connection.
        var service = await silo.Client.Services.CreateAsync(Service("ns", "db", "net", ("app", "db")));
        var virtualIp = await Assert.ThrowsAsync<RpcException>(() => silo.Client.ExplainAsync(new ExplainRequest
        {
            Source = Request("web", "db").Source, Destination = new ExplainPeer { Ip = service.Status.ClusterIps[0] }, Protocol = Protocol.Tcp, Port = 5432,
        }));
        Assert.Equal(StatusCode.InvalidArgument, virtualIp.StatusCode);
        Assert.StartsWith("destination.ip:", virtualIp.Status.Detail);
        Assert.Contains("virtual IP of Service ns/db", virtualIp.Status.Detail);

        // With db's egress isolated, its own node stays reachable and another address does not.
        await silo.Client.NetworkPolicies.CreateAsync(new NetworkPolicy
        {
            Metadata = new ObjectMeta { Namespace = "ns", Name = "db-egress" },
            Spec = new NetworkPolicySpec { PodSelector = new LabelSelector { MatchLabels = { ["app"] = "db" } }, PolicyTypes = { "Egress" } },
        });
        ExplainRequest FromDb(string ip) => new()
        {
            Source = new ExplainPeer { Namespace = "ns", Name = "db" }, Destination = new ExplainPeer { Ip = ip }, Protocol = Protocol.Tcp, Port = 10250,
        };
        var toNode = await silo.Client.ExplainAsync(FromDb("10.255.0.1"));
        Assert.True(toNode.Allowed, toNode.Reason);
        Assert.False((await silo.Client.ExplainAsync(FromDb("10.255.0.2"))).Allowed);
        // The node also holds the network's gateway and its VTEP address (its first block's first
        // address) on the network: host traffic, as the data path treats it.
        var net = await silo.Client.Networks.GetAsync("", "net");
        var vtep = net.Status.Blocks.First(b => b.Node == "node-a").Cidr.Split('/')[0];
        foreach (var own in new[] { net.Status.Ipv4Gateway, vtep })
        {
            var toOwn = await silo.Client.ExplainAsync(FromDb(own));
            Assert.True(toOwn.Allowed, $"{own}: {toOwn.Reason}");
            Assert.Contains("node-a", toOwn.Reason);
        }
    }

    /// <summary>
    /// With one side given by an IPv6 address, the other side's endpoint is taken at its IPv6
    /// address (not its first, IPv4 one); an endpoint without an address of that family is an
    /// INVALID_ARGUMENT naming its side.
    /// </summary>
    [Fact]
    public async Task Explain_TakesTheOtherEndpointInTheFamilyOfTheGivenAddress()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("ns"));
        await silo.Client.Nodes.CreateAsync(Node("node-a"));
        await silo.Client.Networks.CreateAsync(Network("net", 100, "10.20.0.0/16", "fd00:20::/64"));
        await silo.Client.Networks.CreateAsync(Network("v4", 101, "10.21.0.0/16"));
        var web = await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "web", "net", "node-a"));
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "db", "net", "node-a"));
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "only4", "v4", "node-a"));
        var web6 = web.Status.Ips.Single(ip => ip.Contains(':'));

        foreach (var (source, destination) in new[]
        {
            (new ExplainPeer { Namespace = "ns", Name = "web", Ip = web6 }, new ExplainPeer { Namespace = "ns", Name = "db" }),
            (new ExplainPeer { Ip = web6 }, new ExplainPeer { Namespace = "ns", Name = "db" }),
            (new ExplainPeer { Namespace = "ns", Name = "db" }, new ExplainPeer { Namespace = "ns", Name = "web", Ip = web6 }),
        })
        {
            var verdict = await silo.Client.ExplainAsync(new ExplainRequest { Source = source, Destination = destination, Protocol = Protocol.Tcp, Port = 80 });
            Assert.True(verdict.Allowed, verdict.Reason);
        }
        var none = await Assert.ThrowsAsync<RpcException>(() => silo.Client.ExplainAsync(new ExplainRequest
        {
            Source = new ExplainPeer { Ip = web6 }, Destination = new ExplainPeer { Namespace = "ns", Name = "only4" }, Protocol = Protocol.Tcp, Port = 80,
        }));
        Assert.Equal(StatusCode.InvalidArgument, none.StatusCode);
        Assert.StartsWith("destination:", none.Status.Detail);
        Assert.Contains("no IPv6 address", none.Status.Detail);
    }

    [Theory]
    [InlineData("port", 0u, "web", "")]
    [InlineData("source.ip", 5432u, "web", "10.99.99.99")]
    [InlineData("source.ip", 5432u, "web", "not-an-ip")]
    [InlineData("source.name", 5432u, " ", "")]
    [InlineData("source.name", 5432u, "a/b", "")]
    public async Task Explain_RejectsBadInput_NamingTheField(string field, uint port, string from, string ip)
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "web", "net", "node-a"));
        var request = Request(from, "web", port: port);
        request.Source.Ip = ip;
        var e = await Assert.ThrowsAsync<RpcException>(() => silo.Client.ExplainAsync(request));
        Assert.Equal(StatusCode.InvalidArgument, e.StatusCode);
        Assert.StartsWith(field + ":", e.Status.Detail);
    }

    [Fact]
    public async Task Explain_OfAMissingEndpoint_IsNotFound()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        var e = await Assert.ThrowsAsync<RpcException>(() => silo.Client.ExplainAsync(Request("nobody", "nothing")));
        Assert.Equal(StatusCode.NotFound, e.StatusCode);
    }

    [Fact]
    public async Task Heartbeat_StoresTheAgentStatus_OnlyWhenItChanges()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Nodes.CreateAsync(Node("node-a"));
        var status = new AgentStatus { PolicyIssues = { new PolicyIssue { Endpoint = "ns/db", Direction = "Ingress", Policies = { "ns/db" }, Reason = "over the limit" } } };
        await silo.Client.HeartbeatAsync("node-a", status: status);
        var stored = await silo.Client.Nodes.GetAsync("", "node-a");
        Assert.Equal(status, stored.Status.Agent);
        await silo.Client.HeartbeatAsync("node-a", status: status.Clone());
        await silo.Client.HeartbeatAsync("node-a");
        Assert.Equal(stored.Metadata.Etag, (await silo.Client.Nodes.GetAsync("", "node-a")).Metadata.Etag);
        await silo.Client.HeartbeatAsync("node-a", status: new AgentStatus());
        Assert.Empty((await silo.Client.Nodes.GetAsync("", "node-a")).Status.Agent.PolicyIssues);
    }
}
