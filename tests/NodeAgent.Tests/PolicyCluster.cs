using System.Diagnostics;
using System.Net.Sockets;
using System.Text;
using Grpc.Core;
using ControlPlane.Contracts.V1;

namespace ControlPlane.NodeAgent.Tests;

/// <summary>A probed port: TCP 80, TCP 81 or UDP 80 (every pod serves all three).</summary>
public enum ProbePort { Tcp80, Tcp81, Udp80 }

/// <summary>One pod of the truth table: endpoint <see cref="Ns"/>/<see cref="Name"/> on host <see cref="Host"/>.</summary>
public sealed record PolicyPod(string Ns, string Name, int Host, string Ip, string Ip6, string Netns)
{
    public string Address(bool v6) => v6 ? Ip6 : Ip;

    public override string ToString() => $"{Ns}/{Name}";
}

[CollectionDefinition("policy", DisableParallelization = true)]
public sealed class PolicyCollection : ICollectionFixture<PolicyCluster>;

/// <summary>
/// The network-policy test bed, after the upstream NetworkPolicy conformance layout: namespaces
/// x, y, z (label ns=&lt;name&gt;), each with pods a, b, c (label pod=&lt;name&gt;) spread over three hosts
/// so that every pair of namespaces and pods meets on the same host and across hosts. The network
/// is dual-stack. Every pod serves TCP 80, TCP 81 and UDP 80 on both families, with the named ports serve-80-tcp, serve-81-tcp and
/// serve-80-udp. z/c also answers DNS-like UDP/TCP 53 behind the service z/dns, and a server
/// outside every network answers on 10.99.0.200 (pods reach it masqueraded). Agents run with
/// a policy entry limit of 64 (the fail-closed test goes over it).
/// </summary>
public sealed class PolicyCluster : IAsyncLifetime
{
    public const int EntryLimit = 64;
    /// <summary>How often the agents read their tables back (short, so that a test sees it happen).</summary>
    public const int ResyncSeconds = 3;
    public static readonly string[] Namespaces = ["x", "y", "z"];
    public static readonly string[] Names = ["a", "b", "c"];
    private static readonly TimeSpan ProbeTimeout = TimeSpan.FromMilliseconds(600);

    internal Cluster Cluster { get; private set; } = null!;
    internal PodSockets Servers { get; } = new();
    public List<PolicyPod> Pods { get; } = [];
    public string DnsVip { get; private set; } = "";

    /// <summary>A server outside every network (10.99.0.200 on the underlay), serving TCP and UDP 80.</summary>
    public const string Outside = "10.99.0.200";

    public PolicyPod Pod(string ns, string name) => Pods.Single(p => p.Ns == ns && p.Name == name);

    public async Task InitializeAsync()
    {
        Cluster = await Cluster.StartAsync(3, $"--Agent:PolicyEntryLimit={EntryLimit}", $"--Agent:ResyncInterval=00:00:{ResyncSeconds:00}");
        var client = Cluster.Client;
        foreach (var ns in Namespaces)
        {
            await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = ns, Labels = { ["ns"] = ns } } });
        }
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "net" }, Spec = new NetworkSpec { Vni = 60, Ipv4Cidr = "10.60.0.0/16", Ipv6Cidr = "fd00:60::/64" } });
        var i = 0;
        foreach (var ns in Namespaces)
        {
            foreach (var name in Names)
            {
                var host = i++ % 3 + 1;
                var labels = new Dictionary<string, string> { ["pod"] = name };
                if (ns == "z" && name == "c") labels["dns"] = "yes";
                var attached = await Cluster.AttachAsync(host, name, "net", labels: labels, ns: ns, ports:
                [
                    new NamedPort { Name = "serve-80-tcp", Protocol = Protocol.Tcp, Port = 80 },
                    new NamedPort { Name = "serve-81-tcp", Protocol = Protocol.Tcp, Port = 81 },
                    new NamedPort { Name = "serve-80-udp", Protocol = Protocol.Udp, Port = 80 },
                ]);
                var pod = new PolicyPod(ns, name, host, attached.Ips[0], attached.Ips[1], "/var/run/netns/" + Cluster.Pod(ns + name));
                foreach (var family in (AddressFamily[])[AddressFamily.InterNetwork, AddressFamily.InterNetworkV6])
                {
                    Servers.Serve(pod.Netns, pod.ToString(), 80, family);
                    Servers.Serve(pod.Netns, pod.ToString(), 81, family);
                }
                if (ns == "z" && name == "c") Servers.Serve(pod.Netns, pod.ToString(), 53);
                Pods.Add(pod);
            }
        }
        var dns = await client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "dns", Namespace = "z" },
            Spec = new ServiceSpec
            {
                Network = "net", Selector = { ["dns"] = "yes" },
                Ports = { new ServicePort { Name = "dns", Protocol = Protocol.Udp, Port = 53 }, new ServicePort { Name = "dns-tcp", Protocol = Protocol.Tcp, Port = 53 } },
            },
        });
        DnsVip = dns.Status.ClusterIps[0];
        Servers.Serve("/var/run/netns/" + Cluster.AddOutside(), "outside", 80);
    }

    /// <summary>Every ordered pair of different pods, with every probed port.</summary>
    public IEnumerable<(PolicyPod From, PolicyPod To, ProbePort Port)> Cells() =>
        from f in Pods from t in Pods where f != t from p in Enum.GetValues<ProbePort>() select (f, t, p);

    public static (Protocol Protocol, int Port) Of(ProbePort port) => port switch
    {
        ProbePort.Tcp80 => (Protocol.Tcp, 80),
        ProbePort.Tcp81 => (Protocol.Tcp, 81),
        _ => (Protocol.Udp, 80),
    };

    /// <summary>One real connection (TCP) or request on a new flow (UDP): whether it was answered.</summary>
    public static async Task<bool> ProbeAsync(string netns, string ip, Protocol protocol, int port, TimeSpan? timeout = null)
    {
        var (result, _) = protocol == Protocol.Udp
            ? await PodSockets.UdpAsync(netns, ip, port, timeout ?? ProbeTimeout)
            : await PodSockets.TcpAsync(netns, ip, port, timeout ?? ProbeTimeout);
        return result == ProbeResult.Answered;
    }

    /// <summary>Removes every policy (each case starts from none).</summary>
    public async Task ClearPoliciesAsync()
    {
        foreach (var ns in Namespaces)
        {
            foreach (var policy in (await Cluster.Client.NetworkPolicies.ListAsync(new ListRequest { Namespace = ns })).NetworkPolicies)
            {
                await Cluster.Client.NetworkPolicies.DeleteAsync(ns, policy.Metadata.Name);
            }
        }
    }

    /// <summary>
    /// Probes every cell until the whole matrix equals <paramref name="expected"/> (the agents
    /// apply changes asynchronously) or <paramref name="within"/> passes; returns the cells that
    /// still differ. Only differing cells are probed again.
    /// </summary>
    public async Task<List<(PolicyPod From, PolicyPod To, ProbePort Port, bool Observed)>> ReachabilityAsync(
        Func<PolicyPod, PolicyPod, ProbePort, bool> expected, TimeSpan within, bool v6 = false)
    {
        var clock = Stopwatch.StartNew();
        var pending = Cells().ToList();
        while (true)
        {
            var results = await Task.WhenAll(pending.Select(async c =>
            {
                var (protocol, port) = Of(c.Port);
                return (c.From, c.To, c.Port, Observed: await ProbeAsync(c.From.Netns, c.To.Address(v6), protocol, port));
            }));
            var wrong = results.Where(r => r.Observed != expected(r.From, r.To, r.Port)).ToList();
            if (wrong.Count == 0 || clock.Elapsed > within) return wrong;
            pending = wrong.Select(w => (w.From, w.To, w.Port)).ToList();
        }
    }

    /// <summary>The explain call's answer for every cell that differs from <paramref name="expected"/>.</summary>
    public async Task<List<string>> ExplainMismatchesAsync(Func<PolicyPod, PolicyPod, ProbePort, bool> expected, bool v6 = false)
    {
        var answers = await Task.WhenAll(Cells().Select(async c =>
        {
            var (protocol, port) = Of(c.Port);
            var response = await Cluster.Client.ExplainAsync(new ExplainRequest
            {
                Source = new ExplainPeer { Namespace = c.From.Ns, Name = c.From.Name, Ip = v6 ? c.From.Ip6 : "" },
                Destination = new ExplainPeer { Namespace = c.To.Ns, Name = c.To.Name, Ip = v6 ? c.To.Ip6 : "" },
                Protocol = protocol,
                Port = (uint)port,
            });
            return (c, response);
        }));
        return answers.Where(a => a.response.Allowed != expected(a.c.From, a.c.To, a.c.Port))
            .Select(a => $"{a.c.From} -> {a.c.To} {a.c.Port}: explain says {a.response.Reason}").ToList();
    }

    /// <summary>The matrix as text: a row per source, a column per destination, one mark per port (T80 T81 U80).</summary>
    public string Matrix(Func<PolicyPod, PolicyPod, ProbePort, bool> reachable)
    {
        var text = new StringBuilder("from\\to ");
        foreach (var to in Pods) text.Append($"{to,-5}");
        text.AppendLine();
        foreach (var from in Pods)
        {
            text.Append($"{from,-8}");
            foreach (var to in Pods)
            {
                text.Append(from == to ? "  -  " : string.Concat(Enum.GetValues<ProbePort>().Select(p => reachable(from, to, p) ? "." : "X")) + "  ");
            }
            text.AppendLine();
        }
        return text.ToString();
    }

    public async Task DisposeAsync()
    {
        Servers.Dispose();
        await Cluster.DisposeAsync();
    }
}
