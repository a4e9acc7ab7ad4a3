using System.Net;
using System.Net.NetworkInformation;
using System.Net.Sockets;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Netns;

namespace ControlPlane.NodeAgent.Dataplane;

/// <summary>
/// Connects an endpoint: a veth pair whose far end sits in the workload's namespace with the
/// endpoint's addresses (/32, /128), MAC, MTU, routes to its network's prefixes through the anycast
/// gateway and, when the namespace has no default route of that family through another interface
/// yet, the default route too (a container's second interface, on another network, must not take
/// the first one's default route over: removing it would leave the container with none); the host
/// end carries the gateway addresses (so it answers the workload's ARP/NDP for them) and a host
/// route per endpoint address. Both sides also get permanent neighbour entries (endpoint address →
/// its MAC on the host, gateway → the host end's MAC inside), so the first packets need no
/// resolution. Idempotent: an existing pair is reused and completed, when it joins the interface
/// of that name in that namespace; a pair joined elsewhere is replaced.
/// </summary>
public static class EndpointWiring
{
    /// <param name="Table">The network's routing table: the endpoint's host routes go there, and traffic from the endpoint looks it up.</param>
    /// <param name="Prefixes">The network's address spaces (one per family), routed through the gateway of their family.</param>
    public sealed record Wiring(string HostInterface, string Interface, IReadOnlyList<IPAddress> Ips, PhysicalAddress Mac, IReadOnlyList<IPAddress> Gateways, int Mtu, uint Table,
        IReadOnlyList<(IPAddress Prefix, int Length)> Prefixes);

    /// <summary>What a connect made.</summary>
    /// <param name="HostMac">The MAC of the host end.</param>
    /// <param name="Routes">The destinations routed through the gateways on the workload's interface ("10.10.0.0/16", "0.0.0.0/0").</param>
    public sealed record Connected(PhysicalAddress HostMac, IReadOnlyList<string> Routes);

    /// <summary>
    /// The interface of the workload namespace at <paramref name="netnsPath"/>, other than
    /// <paramref name="interfaceName"/>, that routes one of a network's <paramref name="prefixes"/>
    /// already (the workload is on that network through it), or null. A second interface on the
    /// same network would take those routes over, and lose them for both when it goes.
    /// </summary>
    public static string? RoutedElsewhere(string netnsPath, string interfaceName, IReadOnlyList<(IPAddress Prefix, int Length)> prefixes)
    {
        using var inside = NetworkNamespace.Enter(netnsPath);
        return inside.Invoke(() =>
        {
            using var pod = RouteNetlink.Open();
            var links = pod.ListLinks().ToDictionary(l => l.Index, l => l.Name);
            foreach (var family in prefixes.Select(p => Family(p.Prefix)).Distinct())
            {
                foreach (var route in pod.ListRoutes(family))
                {
                    if (prefixes.Contains((route.Destination, route.PrefixLength)) && links.TryGetValue(route.OutputIndex, out var name) && name != interfaceName) return name;
                }
            }
            return (string?)null;
        });
    }

    /// <summary>
    /// Whether the endpoint's pair (<paramref name="hostInterface"/>) joins a namespace other than
    /// <paramref name="netnsPath"/>: a veth lives only as long as both its namespaces, so that
    /// namespace is alive, and its workload with it.
    /// </summary>
    public static bool JoinsAnother(string netnsPath, string hostInterface, string interfaceName)
    {
        using var rtnl = RouteNetlink.Open();
        return rtnl.FindLink(hostInterface) is { } host && !VethPair.Joins(rtnl, host, netnsPath, interfaceName);
    }

    /// <exception cref="InterfaceTakenException">The namespace has an interface of the wiring's name that is not the endpoint's.</exception>
    public static Connected Connect(string netnsPath, Wiring wiring, byte protocol)
    {
        using var rtnl = RouteNetlink.Open();
        var host = rtnl.FindLink(wiring.HostInterface);
        if (host is null || !VethPair.Joins(rtnl, host, netnsPath, wiring.Interface))
        {
            // An interface of that name there is another's (another container's, or the runtime's):
            // it is not touched.
            if (VethPair.Find(netnsPath, wiring.Interface) is not null) throw new InterfaceTakenException(wiring.Interface, netnsPath);
            if (host is not null)
            {
                // The pair joins another namespace: the container's earlier one, whose DEL never
                // came. This attach of the same endpoint moves it here; the old end goes with the pair.
                rtnl.DeleteLink(host.Index);
            }
            using var target = File.OpenHandle(netnsPath);
            rtnl.CreateVeth(wiring.HostInterface, wiring.Interface, wiring.Mtu, (int)target.DangerousGetHandle());
            host = rtnl.FindLink(wiring.HostInterface)!;
        }
        rtnl.SetLink(host.Index, up: true, mtu: wiring.Mtu);
        foreach (var gateway in wiring.Gateways)
        {
            rtnl.AddAddress(host.Index, gateway, Bits(gateway));
        }
        var batch = rtnl.Batch();
        foreach (var ip in wiring.Ips)
        {
            batch.ReplaceNeighbour(host.Index, ip, wiring.Mac);
            batch.ReplaceRoute(ip, Bits(ip), null, host.Index, protocol, table: wiring.Table);
        }
        foreach (var family in wiring.Ips.Select(Family).Distinct())
        {
            batch.AddRule(family, wiring.HostInterface, wiring.Table, Names.RulePriority, protocol);
        }
        // A rule that is already there (a repeated attach) is what we want.
        if (batch.Execute().FirstOrDefault(f => !f.Error.IsExists) is { Error: { } error })
        {
            throw error;
        }

        var routed = new List<string>();
        using var inside = NetworkNamespace.Enter(netnsPath);
        inside.Invoke(() =>
        {
            using var pod = RouteNetlink.Open();
            var link = pod.FindLink(wiring.Interface) ?? throw new InvalidOperationException($"{wiring.Interface} is missing in {netnsPath}");
            // The MAC changes with the link down. An interface wired already (a repeated attach) is
            // left up: setting it down would drop every route through it and its IPv6 addresses,
            // what other plugins or the workload added included.
            if (!wiring.Mac.Equals(link.Mac)) pod.SetLink(link.Index, up: false, mac: wiring.Mac);
            if (link.Mtu != wiring.Mtu) pod.SetLink(link.Index, mtu: wiring.Mtu);
            if (!link.Up || !wiring.Mac.Equals(link.Mac)) pod.SetLink(link.Index, up: true);
            if (pod.FindLink("lo") is { Up: false } lo) pod.SetLink(lo.Index, up: true);
            foreach (var ip in wiring.Ips)
            {
                pod.AddAddress(link.Index, ip, Bits(ip));
            }
            var routes = pod.Batch();
            foreach (var gateway in wiring.Gateways)
            {
                routes.ReplaceNeighbour(link.Index, gateway, host.Mac!);
                foreach (var (prefix, length) in wiring.Prefixes.Where(p => p.Prefix.AddressFamily == gateway.AddressFamily))
                {
                    routes.ReplaceRoute(prefix, length, gateway, link.Index, protocol, onlink: true);
                    routed.Add($"{prefix}/{length}");
                }
                // Replaced when it is this interface's already (a repeated attach repairs it).
                if (!pod.ListRoutes(Family(gateway)).Any(r => r.PrefixLength == 0 && r.Unicast && r.OutputIndex != link.Index))
                {
                    var any = gateway.AddressFamily == AddressFamily.InterNetwork ? IPAddress.Any : IPAddress.IPv6Any;
                    routes.ReplaceRoute(any, 0, gateway, link.Index, protocol, onlink: true);
                    routed.Add($"{any}/0");
                }
            }
            routes.ExecuteOrThrow();
        });
        return new Connected(host.Mac!, routed);
    }


    /// <summary>The host end of an endpoint as <see cref="Connect"/> leaves it.</summary>
    public sealed record HostSide(string HostInterface, IReadOnlyList<IPAddress> Ips, PhysicalAddress Mac, IReadOnlyList<IPAddress> Gateways, uint Table)
    {
        /// <summary>The host end of endpoint <paramref name="endpointKey"/> with <paramref name="status"/>, on its network's table.</summary>
        public static HostSide Of(string endpointKey, Contracts.V1.EndpointStatus status, uint table) =>
            new(Names.EndpointVeth(endpointKey), [.. status.Ips.Select(IPAddress.Parse)], PhysicalAddress.Parse(status.Mac),
                [.. new[] { status.Ipv4Gateway, status.Ipv6Gateway }.Where(g => g.Length > 0).Select(IPAddress.Parse)], table);
    }

    /// <summary>
    /// Puts back what <see cref="Connect"/> made on the host end of each endpoint whose interface
    /// exists (and is not being attached: <paramref name="attaching"/>), where it went missing or
    /// changed: the link up, the gateway addresses, a neighbour entry and a host route in the
    /// network's table per address, the rule per family. A link set down and up, or a route or
    /// neighbour deleted by hand, loses them; the reconciler's every pass calls this. What is there
    /// is left alone. Returns what it put back.
    /// </summary>
    /// <param name="present">The links there are now.</param>
    public static List<string> RepairHosts(RouteNetlink rtnl, IReadOnlyList<Link> present, IReadOnlyList<HostSide> wanted, Func<string, bool> attaching, byte protocol)
    {
        var repaired = new List<string>();
        var links = present.ToDictionary(l => l.Name);
        var hosts = wanted.Where(w => links.ContainsKey(w.HostInterface) && !attaching(w.HostInterface)).ToList();
        if (hosts.Count == 0) return repaired;
        var addresses = AddressFamilies.Both.SelectMany(rtnl.ListAddresses).ToLookup(a => a.Index);
        var neighbours = AddressFamilies.Both.SelectMany(rtnl.ListNeighbours).ToLookup(n => n.Index);
        var rules = AddressFamilies.Both.SelectMany(f => rtnl.ListRules(f, protocol)).ToList();
        var routes = new Dictionary<(uint Table, byte Family), IReadOnlyList<Route>>();
        var batch = rtnl.Batch();
        foreach (var host in hosts)
        {
            var link = links[host.HostInterface];
            if (!link.Up)
            {
                rtnl.SetLink(link.Index, up: true);
                repaired.Add($"{host.HostInterface} up");
            }
            foreach (var gateway in host.Gateways.Where(g => !addresses[link.Index].Any(a => a.Address.Equals(g))))
            {
                rtnl.AddAddress(link.Index, gateway, Bits(gateway));
                repaired.Add($"{host.HostInterface} address {gateway}");
            }
            foreach (var ip in host.Ips)
            {
                if (!neighbours[link.Index].Any(n => n.Address.Equals(ip) && host.Mac.Equals(n.Mac)))
                {
                    batch.ReplaceNeighbour(link.Index, ip, host.Mac);
                    repaired.Add($"{host.HostInterface} neighbour {ip}");
                }
                var table = (host.Table, Family(ip));
                if (!routes.TryGetValue(table, out var inTable)) routes[table] = inTable = rtnl.ListRoutes(Family(ip), protocol, host.Table);
                if (!inTable.Any(r => r.Destination.Equals(ip) && r.PrefixLength == Bits(ip) && r.OutputIndex == link.Index))
                {
                    batch.ReplaceRoute(ip, Bits(ip), null, link.Index, protocol, table: host.Table);
                    repaired.Add($"{host.HostInterface} route {ip}");
                }
            }
            foreach (var family in host.Ips.Select(Family).Distinct().Where(f => !rules.Any(r => r.Family == f && r.InputInterface == host.HostInterface && r.Table == host.Table)))
            {
                batch.AddRule(family, host.HostInterface, host.Table, Names.RulePriority, protocol);
                repaired.Add($"{host.HostInterface} rule");
            }
        }
        if (batch.Execute().FirstOrDefault(f => !f.Error.IsExists) is { Error: { } error })
        {
            throw error;
        }
        return repaired;
    }

    /// <summary>Removes the pair (its far end and routes go with it) and its rule. Missing is fine.</summary>
    public static void Disconnect(string hostInterface, byte protocol)
    {
        using var rtnl = RouteNetlink.Open();
        var rules = rtnl.Batch();
        foreach (var family in AddressFamilies.Both)
        {
            foreach (var rule in rtnl.ListRules(family, protocol).Where(r => r.InputInterface == hostInterface))
            {
                rules.DeleteRule(rule.Family, hostInterface, rule.Table, rule.Priority, protocol);
            }
        }
        rules.Execute();
        if (rtnl.FindLink(hostInterface) is { } link)
        {
            try
            {
                rtnl.DeleteLink(link.Index);
            }
            catch (NetlinkException e) when (e.IsNotFound)
            {
            }
        }
    }

    private static int Bits(IPAddress ip) => AddressFamilies.HostBits(ip);

    private static byte Family(IPAddress ip) => AddressFamilies.Of(ip);
}
