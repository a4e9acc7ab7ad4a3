using System.Net;
using ControlPlane.Contracts.Updates;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Ipam;
using ControlPlane.Grains.State;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// An endpoint: one workload interface on a network and a node. Creation takes its addresses
/// from the network; the commit claims them in the store (so no other endpoint can hold them,
/// whatever any allocator believes), and deletion releases them in the same transaction, then
/// tells the network, naming this endpoint as the holder.
/// </summary>
[GrainType(Kinds.Endpoint)]
internal sealed class EndpointGrain(ObjectServices services) : ResourceGrain<Endpoint>(services), IEndpointGrain
{
    protected override bool Namespaced => true;

    protected override ObjectMeta MetaOf(Endpoint resource) => resource.Metadata ??= new ObjectMeta();

    protected override void ValidateName(string name) => Validation.Names.RequireSubdomain("metadata.name", name);

    protected override (string Namespace, string Index) Describe(Endpoint state) => (state.Metadata.Namespace, state.Spec.Network);

    protected override IReadOnlyList<(string Kind, string Key)> References(Endpoint state) =>
        [(Kinds.Namespace, state.Metadata.Namespace), (Kinds.Node, state.Spec.Node)];

    protected override void Validate(Endpoint resource)
    {
        var spec = resource.Spec ?? throw ControlPlaneException.Invalid("spec", "is required");
        Validation.Names.RequireLabel("spec.network", spec.Network);
        Validation.Names.RequireSubdomain("spec.node", spec.Node);
        if (spec.Hostname.Length > 0) Validation.Names.RequireLabel("spec.hostname", spec.Hostname);
        if (spec.Subdomain.Length > 0) Validation.Names.RequireLabel("spec.subdomain", spec.Subdomain);
        var names = new HashSet<string>();
        for (var i = 0; i < spec.Ports.Count; i++)
        {
            var port = spec.Ports[i];
            Ports.RequireName($"spec.ports[{i}].name", port.Name);
            Ports.RequireNumber($"spec.ports[{i}].port", port.Port);
            Ports.RequireProtocol($"spec.ports[{i}].protocol", port.Protocol);
            if (!names.Add(port.Name)) throw ControlPlaneException.Invalid($"spec.ports[{i}].name", $"'{port.Name}' is used twice");
        }
        var families = new HashSet<System.Net.Sockets.AddressFamily>();
        for (var i = 0; i < spec.Ips.Count; i++)
        {
            var address = AddressInput.ParseHost($"spec.ips[{i}]", spec.Ips[i]);
            if (!families.Add(address.AddressFamily)) throw ControlPlaneException.Invalid($"spec.ips[{i}]", "asks for a second address of the same family");
            spec.Ips[i] = address.ToString();
        }
    }

    protected override async Task<Reservation> PrepareCreateAsync(Endpoint resource)
    {
        var spec = resource.Spec;
        var node = await Store.ReadAsync(Kinds.Node, spec.Node) is { } stored
            ? Node.Parser.ParseFrom(stored.Data)
            : throw MissingReference(Kinds.Node, spec.Node);
        var nodeReady = node.Status?.Ready ?? false;
        var network = GrainFactory.Get<INetworkGrain>(spec.Network);
        var assignment = await network.AllocateAsync(spec.Node, Key, [.. spec.Ips]);
        resource.Status = new EndpointStatus
        {
            Mac = MacAddresses.Derive("endpoint/" + Key),
            Ipv4Gateway = assignment.Ipv4Gateway,
            Ipv6Gateway = assignment.Ipv6Gateway,
            Mtu = assignment.Mtu,
            NodeReady = nodeReady,
            EffectiveReady = spec.Ready && nodeReady,
        };
        resource.Status.Ips.Add(assignment.Ips);
        return new Reservation(
            [.. assignment.Ips.Select(ip => Claims.Address(spec.Network, IPAddress.Parse(ip)))],
            () => network.ReleaseAsync(Key, assignment.Ips),
            () => network.ResyncAsync());
    }

    protected override Endpoint Merge(Endpoint current, Endpoint requested)
    {
        if (FixedFields.Changed(current, requested) is { } fixedField) throw ControlPlaneException.Invalid(fixedField.Field, fixedField.Reason);
        var (was, now) = (current.Spec, requested.Spec);
        now.Ips.Clear();
        now.Ips.Add(was.Ips);
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        current.Spec = now;
        current.Status.EffectiveReady = now.Ready && current.Status.NodeReady;
        return current;
    }

    protected override Task AfterDeleteAsync(Endpoint deleted) =>
        GrainFactory.Get<INetworkGrain>(deleted.Spec.Network).ReleaseAsync(Key, [.. deleted.Status.Ips]);

    public async Task SetNodeReadyAsync(bool ready)
    {
        if (State is null || State.Status.NodeReady == ready)
        {
            return;
        }
        var updated = State.Clone();
        updated.Status.NodeReady = ready;
        updated.Status.EffectiveReady = updated.Spec.Ready && ready;
        await CommitAsync(updated);
    }
}
