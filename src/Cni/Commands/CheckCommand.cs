using System.Net;
using System.Text.Json.Nodes;
using ControlPlane.Contracts.Attachments;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netlink;

namespace ControlPlane.Cni.Commands;

/// <summary>
/// CHECK: the attachment described by prevResult is still there as this plugin made it. Inside the
/// container: the interface (up, its MAC and MTU: prevResult's, or the endpoint's for versions
/// whose result has none), each of its addresses with its prefix length, and the default routes
/// through its gateways, on that interface. On the host: the veth's host end,
/// up. In the control plane: the endpoint, still this container's, with the same addresses.
/// Anything else is 120 naming what differs.
/// </summary>
public static class CheckCommand
{
    public static async Task RunAsync(CniInvocation invocation, PluginConfig config)
    {
        config.Validate("CHECK", "0.4.0");
        var previous = config.PrevResult ?? throw new CniException(CniCodes.InvalidConfig, "CHECK needs prevResult", "the runtime passes the ADD result as prevResult");
        var identity = EndpointIdentity.Of(invocation, config);
        var expected = Expected.From(previous, invocation);
        var state = NetnsState.Read(invocation.Netns);

        var link = state.Find(invocation.InterfaceName) ?? throw Failed($"interface {invocation.InterfaceName} is missing in the container");
        if (!link.Up) Fail($"interface {link.Name} is down");
        if (expected.Mac is { } mac && !string.Equals(Colons(link.Mac), mac, StringComparison.OrdinalIgnoreCase))
            Fail($"interface {link.Name} has MAC {Colons(link.Mac)}, not {mac}");
        if (expected.Mtu is { } mtu && link.Mtu != mtu) Fail($"interface {link.Name} has MTU {link.Mtu}, not {mtu}");
        foreach (var (address, prefix) in expected.Addresses)
        {
            if (!state.Addresses.Any(a => a.Index == link.Index && a.Address.Equals(address) && a.PrefixLength == prefix))
                Fail($"address {address}/{prefix} is missing on {link.Name}");
        }
        foreach (var (destination, prefix, gateway) in expected.Routes)
        {
            if (!state.Routes.Any(r => r.Destination.Equals(destination) && r.PrefixLength == prefix && gateway.Equals(r.Gateway) && r.OutputIndex == link.Index))
                Fail($"route {destination}/{prefix} via {gateway} dev {link.Name} is missing");
        }
        if (expected.HostInterface is { } host)
        {
            using var rtnl = RouteNetlink.Open();
            var hostLink = rtnl.FindLink(host) ?? throw Failed($"the host end {host} is missing");
            if (!hostLink.Up) Fail($"the host end {host} is down");
        }

        using var agent = new AgentConnection(config.AgentSocket);
        var endpoint = await agent.AttachedAsync(identity, config.Name)
            ?? throw Failed($"no endpoint {identity.Namespace}/{identity.Name} is attached for this container on this node");
        // Results before 1.1.0 carry no MTU: the endpoint's is the one ADD set.
        if (expected.Mtu is null && endpoint.Status.Mtu != 0 && link.Mtu != endpoint.Status.Mtu)
            Fail($"interface {link.Name} has MTU {link.Mtu}, not {endpoint.Status.Mtu}");
        var held = endpoint.Status.Ips.Select(IPAddress.Parse).ToHashSet();
        if (!held.SetEquals(expected.Addresses.Select(a => a.Address)))
            Fail($"endpoint {identity.Namespace}/{identity.Name} holds {string.Join(", ", held)}, the container was given {string.Join(", ", expected.Addresses.Select(a => a.Address))}");
    }

    private static void Fail(string what) => throw Failed(what);

    private static CniException Failed(string what) => new(CniCodes.CheckFailed, "the attachment has changed", what);

    private static string Colons(System.Net.NetworkInformation.PhysicalAddress? mac) =>
        mac is null ? "none" : string.Join(':', mac.GetAddressBytes().Select(b => b.ToString("x2", System.Globalization.CultureInfo.InvariantCulture)));

    /// <summary>What prevResult says this plugin made for (CNI_NETNS, CNI_IFNAME).</summary>
    private sealed record Expected(string? Mac, int? Mtu, string? HostInterface,
        IReadOnlyList<(IPAddress Address, int Prefix)> Addresses, IReadOnlyList<(IPAddress Destination, int Prefix, IPAddress Gateway)> Routes)
    {
        public static Expected From(JsonObject previous, CniInvocation invocation)
        {
            var interfaces = previous["interfaces"] as JsonArray ?? [];
            var index = -1;
            for (var i = 0; i < interfaces.Count; i++)
            {
                if (Text(interfaces[i]?["name"]) == invocation.InterfaceName && Text(interfaces[i]?["sandbox"]) == invocation.Netns) index = i;
            }
            if (index < 0) throw new CniException(CniCodes.InvalidConfig, "prevResult has no such interface", $"no interface {invocation.InterfaceName} in sandbox {invocation.Netns}");
            var inside = interfaces[index]!;
            // ADD puts the host end right before the container's interface.
            var host = index > 0 && string.IsNullOrEmpty(Text(interfaces[index - 1]?["sandbox"])) ? Text(interfaces[index - 1]?["name"]) : null;
            var addresses = new List<(IPAddress, int)>();
            var gateways = new HashSet<IPAddress>();
            foreach (var ip in (previous["ips"] as JsonArray ?? []).Where(ip => ip?["interface"] is JsonValue v && v.TryGetValue<int>(out var i) && i == index))
            {
                var (address, prefix) = Cidr(Text(ip?["address"]), "prevResult ips[].address");
                addresses.Add((address, prefix));
                if (Text(ip?["gateway"]) is { Length: > 0 } gateway) gateways.Add(Address(gateway, "prevResult ips[].gateway"));
            }
            var routes = new List<(IPAddress, int, IPAddress)>();
            foreach (var route in previous["routes"] as JsonArray ?? [])
            {
                if (Text(route?["gw"]) is not { Length: > 0 } gw || !gateways.Contains(Address(gw, "prevResult routes[].gw"))) continue;
                var (destination, prefix) = Cidr(Text(route?["dst"]), "prevResult routes[].dst");
                routes.Add((destination, prefix, Address(gw, "prevResult routes[].gw")));
            }
            int? mtu = inside["mtu"] is JsonValue m && m.TryGetValue<int>(out var value) ? value : null;
            return new Expected(Text(inside["mac"]), mtu, host, addresses, routes);
        }

        private static string? Text(JsonNode? node) => node is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;

        private static (IPAddress, int) Cidr(string? text, string field)
        {
            var slash = text?.IndexOf('/', StringComparison.Ordinal) ?? -1;
            if (text is null || slash < 0 || !int.TryParse(text.AsSpan(slash + 1), out var prefix))
                throw new CniException(CniCodes.DecodingFailure, "prevResult is malformed", $"{field}: '{text}' is not address/prefix");
            return (Address(text[..slash], field), prefix);
        }

        private static IPAddress Address(string text, string field) =>
            IPAddress.TryParse(text, out var address) ? address : throw new CniException(CniCodes.DecodingFailure, "prevResult is malformed", $"{field}: '{text}' is not an address");
    }
}
