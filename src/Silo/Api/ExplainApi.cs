using System.Net;
using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains;
using ControlPlane.Grains.Resources;
using ControlPlane.Storage;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;

namespace ControlPlane.Silo.Api;

/// <summary>
/// NetworkPolicies/Explain: would a source reach a destination on a protocol and port. Reads the
/// authoritative state — the two endpoints and namespaces from their grains, the policies of both
/// namespaces from the store — and evaluates it with <see cref="PolicyExplainer"/>.
/// </summary>
public static class ExplainApi
{
    private const int Page = 1000;

    public static async Task<ExplainResponse> ExplainAsync(IGrainFactory grains, DurableStore store, ExplainRequest request)
    {
        if (request.Port is 0 or > 65535) throw ControlPlaneException.Invalid("port", $"{request.Port} is outside 1..65535");
        if (!Enum.IsDefined(request.Protocol)) throw ControlPlaneException.Invalid("protocol", $"{(int)request.Protocol} is not TCP, UDP or SCTP");
        // One side given by address sets the family; the other endpoint is then taken at its
        // address of that family.
        var family = new[] { request.Source?.Ip, request.Destination?.Ip }
            .Select(ip => IPAddress.TryParse(ip, out var address) ? address.AddressFamily : (System.Net.Sockets.AddressFamily?)null)
            .FirstOrDefault(f => f is not null);
        var source = await SubjectAsync(grains, store, "source", request.Source, family).ConfigureAwait(false);
        var destination = await SubjectAsync(grains, store, "destination", request.Destination, family).ConfigureAwait(false);
        if (source.Address.AddressFamily != destination.Address.AddressFamily)
            throw ControlPlaneException.Invalid("destination.ip", "source and destination addresses are of different families");
        return PolicyExplainer.Explain(source, destination, PolicySemantics.ProtocolNumber(request.Protocol), (ushort)request.Port,
            Policies(store, source.Endpoint), Policies(store, destination.Endpoint));
    }

    private static async Task<ExplainSubject> SubjectAsync(IGrainFactory grains, DurableStore store, string field, ExplainPeer? peer,
        System.Net.Sockets.AddressFamily? family)
    {
        if (peer is null) throw ControlPlaneException.Invalid(field, "is required");
        IPAddress? address = null;
        if (peer.Ip.Length > 0 && !IPAddress.TryParse(peer.Ip, out address))
            throw ControlPlaneException.Invalid(field + ".ip", $"{ControlPlaneException.Quote(peer.Ip)} is not an IP address");
        if (peer.Name.Length == 0)
        {
            if (address is null) throw ControlPlaneException.Invalid(field, "name an endpoint (namespace and name) or give an ip");
            // An address alone stands for what holds it, as on the wire: an endpoint's address is
            // that endpoint, its policies included; only an address nothing holds is outside.
            switch (await HolderAsync(store, address).ConfigureAwait(false))
            {
                case { Kind: Kinds.Endpoint } endpointHolder:
                    var (holderNamespace, holderName) = ObjectKeys.Split(endpointHolder.Key);
                    peer = new ExplainPeer { Namespace = holderNamespace, Name = holderName, Ip = peer.Ip };
                    break;
                case { } virtualIp:
                    throw ControlPlaneException.Invalid(field + ".ip",
                        $"{address} is the virtual IP of {virtualIp.Kind} {virtualIp.Key}: its traffic goes to one of the endpoints behind it, so explain with one of those");
                default:
                    return new ExplainSubject(null, address, null);
            }
        }
        if (peer.Namespace.Length == 0) throw ControlPlaneException.Invalid(field + ".namespace", "is required with a name");
        var key = ResourceHandlers<Endpoint, IEndpointGrain>.KeyOf(ResourceKinds.Endpoint, peer.Namespace, peer.Name, field + ".");
        var endpoint = await grains.Get<IEndpointGrain>(key).GetAsync().ConfigureAwait(false);
        var ips = endpoint.Status.Ips.Select(IPAddress.Parse).ToList();
        if (address is null)
        {
            address = ips.FirstOrDefault(ip => family is null || ip.AddressFamily == family) ?? throw ControlPlaneException.Invalid(field,
                ips.Count == 0 ? $"endpoint {peer.Namespace}/{peer.Name} has no address yet"
                    : $"endpoint {peer.Namespace}/{peer.Name} has no {(family == System.Net.Sockets.AddressFamily.InterNetworkV6 ? "IPv6" : "IPv4")} address, the family of the other side's address");
        }
        else if (!ips.Contains(address))
        {
            throw ControlPlaneException.Invalid(field + ".ip", $"{address} is not an address of endpoint {peer.Namespace}/{peer.Name}");
        }
        Namespace? ns = null;
        try
        {
            ns = await grains.Get<INamespaceGrain>(ObjectKeys.Of("", peer.Namespace)).GetAsync().ConfigureAwait(false);
        }
        catch (ControlPlaneException e) when (e.Code == ErrorCode.NotFound)
        {
        }
        // What the endpoint's node holds: its underlay address, and its VTEP and the gateways on the endpoint's network.
        var nodeAddresses = new List<IPAddress>();
        if (await store.Store.ReadAsync(Kinds.Node, endpoint.Spec.Node).ConfigureAwait(false) is { } node
            && IPAddress.TryParse(Node.Parser.ParseFrom(node.Data).Spec?.UnderlayIp, out var underlay))
        {
            nodeAddresses.Add(underlay);
        }
        if (await store.Store.ReadAsync(Kinds.Network, endpoint.Spec.Network).ConfigureAwait(false) is { } network)
        {
            nodeAddresses.AddRange(NodeAddresses.OnNetwork(Network.Parser.ParseFrom(network.Data), endpoint.Spec.Node));
        }
        return new ExplainSubject(endpoint, address, PolicySemantics.NamespaceLabels(peer.Namespace, ns), nodeAddresses);
    }

    /// <summary>What holds an address: a service (or import) by its virtual IP, or an endpoint on one of the networks.</summary>
    private static async Task<ClaimHolder?> HolderAsync(DurableStore store, IPAddress address)
    {
        var virtualIp = Claims.ServiceIp(address);
        if (await store.Store.FindClaimAsync(virtualIp.Scope, virtualIp.Low).ConfigureAwait(false) is { } service) return service;
        var networks = await store.Store.ListAsync([Kinds.Network], null, null, int.MaxValue).ConfigureAwait(false);
        foreach (var network in networks.Objects)
        {
            var claim = Claims.Address(network.Key, address);
            if (await store.Store.FindClaimAsync(claim.Scope, claim.Low).ConfigureAwait(false) is { } endpoint) return endpoint;
        }
        return null;
    }

    private static List<NetworkPolicy> Policies(DurableStore store, Endpoint? endpoint)
    {
        var policies = new List<NetworkPolicy>();
        if (endpoint is null) return policies;
        var prefix = endpoint.Metadata.Namespace + "/";
        string? after = null;
        while (true)
        {
            var page = store.Store.List([ResourceKinds.NetworkPolicy.Name], prefix, after, Page);
            foreach (var stored in page.Objects) policies.Add(ResourceKinds.NetworkPolicy.Decode(stored.Data, stored.Revision));
            if (!page.HasMore) return policies;
            after = page.Objects[^1].Key;
        }
    }
}
