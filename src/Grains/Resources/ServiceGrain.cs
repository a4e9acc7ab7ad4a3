using ControlPlane.Contracts.Naming;
using ControlPlane.Contracts.Updates;
using ControlPlane.Contracts.V1;
using System.Net;
using ControlPlane.Grains.State;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// A service: ClusterIP (a virtual IP from the service range), headless (DNS only) or
/// ExternalName (a DNS alias). Its endpoint set is derived from the selector by the
/// service-endpoints controller.
/// </summary>
[GrainType(Kinds.Service)]
internal sealed class ServiceGrain(ObjectServices services) : ResourceGrain<Service>(services), IServiceGrain
{
    private const uint MaxAffinityTimeout = 86_400;

    protected override bool Namespaced => true;

    protected override ObjectMeta MetaOf(Service resource) => resource.Metadata ??= new ObjectMeta();

    protected override IReadOnlyList<(string Kind, string Key)> References(Service state) => state.Spec.Network.Length > 0
        ? [(Kinds.Namespace, state.Metadata.Namespace), (Kinds.Network, state.Spec.Network)]
        : [(Kinds.Namespace, state.Metadata.Namespace)];

    protected override void ValidateName(string name)
    {
        // Service names become DNS labels and must start with a letter (DNS-1035).
        Validation.Names.RequireLabel("metadata.name", name);
        if (!char.IsAsciiLetter(name[0])) throw ControlPlaneException.Invalid("metadata.name", $"'{name}' must start with a letter");
    }

    protected override (string Namespace, string Index) Describe(Service state) => (state.Metadata.Namespace, state.Spec.Network);

    protected override void Validate(Service resource)
    {
        var spec = resource.Spec ?? throw ControlPlaneException.Invalid("spec", "is required");
        if (!Enum.IsDefined(spec.Type)) throw ControlPlaneException.Invalid("spec.type", $"{(int)spec.Type} is not a service type");
        if (spec.Type == ServiceType.Unspecified) spec.Type = ServiceType.ClusterIp;
        if (spec.Type == ServiceType.ExternalName)
        {
            // As Kubernetes: a lower-case RFC 1123 subdomain, one trailing dot allowed.
            var name = spec.ExternalName.EndsWith('.') ? spec.ExternalName[..^1] : spec.ExternalName;
            if (name.Length == 0) throw ControlPlaneException.Invalid("spec.external_name", "is required for EXTERNAL_NAME services");
            Validation.Names.RequireSubdomain("spec.external_name", name);
            if (spec.Network.Length > 0) Validation.Names.RequireLabel("spec.network", spec.Network);
        }
        else
        {
            if (spec.ExternalName.Length > 0) throw ControlPlaneException.Invalid("spec.external_name", "is only allowed for EXTERNAL_NAME services");
            Validation.Names.RequireLabel("spec.network", spec.Network);
        }
        Validation.ServiceFamilies.Resolve(spec, Services.Options);
        Validation.Names.RequireLabels("spec.selector", spec.Selector);
        var names = new HashSet<string>();
        var endpoints = new HashSet<(Protocol, uint)>();
        for (var i = 0; i < spec.Ports.Count; i++)
        {
            var port = spec.Ports[i];
            var at = $"spec.ports[{i}]";
            if (NameRules.ServicePortName(port.Name, spec.Ports.Count) is { } nameError) throw ControlPlaneException.Invalid(at + ".name", nameError);
            if (!names.Add(port.Name)) throw ControlPlaneException.Invalid(at + ".name", $"'{port.Name}' is used twice");
            Ports.RequireNumber(at + ".port", port.Port);
            Ports.RequireProtocol(at + ".protocol", port.Protocol);
            if (!endpoints.Add((Ports.Normalize(port.Protocol), port.Port))) throw ControlPlaneException.Invalid(at + ".port", $"{port.Protocol}/{port.Port} is listed twice");
            switch (port.TargetCase)
            {
                case ServicePort.TargetOneofCase.TargetPortNumber: Ports.RequireNumber(at + ".target_port_number", port.TargetPortNumber); break;
                case ServicePort.TargetOneofCase.TargetPortName: Ports.RequireName(at + ".target_port_name", port.TargetPortName); break;
                default: port.TargetPortNumber = port.Port; break;
            }
        }
        if (spec.SessionAffinity == SessionAffinity.ClientIp)
        {
            if (spec.SessionAffinityTimeoutSeconds == 0) spec.SessionAffinityTimeoutSeconds = 10_800;
            if (spec.SessionAffinityTimeoutSeconds > MaxAffinityTimeout)
                throw ControlPlaneException.Invalid("spec.session_affinity_timeout_seconds", $"{spec.SessionAffinityTimeoutSeconds} is more than {MaxAffinityTimeout}");
        }
        else if (spec.SessionAffinity != SessionAffinity.None)
        {
            throw ControlPlaneException.Invalid("spec.session_affinity", $"{(int)spec.SessionAffinity} is not a session affinity");
        }
        else if (spec.SessionAffinityTimeoutSeconds != 0)
        {
            throw ControlPlaneException.Invalid("spec.session_affinity_timeout_seconds", "is only allowed with CLIENT_IP affinity");
        }
    }

    protected override async Task<Reservation> PrepareCreateAsync(Service resource)
    {
        resource.Status = new ServiceStatus();
        await RequireNetworkAsync(resource.Spec);
        return await ReserveAsync(resource);
    }

    /// <summary>
    /// A change of type (to or from EXTERNAL_NAME, the only ones allowed): the service takes
    /// virtual IPs when it becomes CLUSTER_IP and holds none otherwise; the ones it held are
    /// released once the update is durable (<see cref="AfterUpdateAsync"/>).
    /// </summary>
    protected override async Task<Reservation?> PrepareUpdateAsync(Service current, Service updated)
    {
        if (updated.Spec.Type == current.Spec.Type) return await RestackAsync(current, updated);
        updated.Status.ClusterIps.Clear();
        if (updated.Spec.Network != current.Spec.Network) await RequireNetworkAsync(updated.Spec);
        return await ReserveAsync(updated);
    }

    protected override Task AfterUpdateAsync(Service previous, Service updated)
    {
        if (updated.Spec.Type != previous.Spec.Type) return ReleaseAsync(previous);
        // Back to single-stack: the second family's address is given back once that is durable.
        return ReleaseAsync([.. previous.Status.ClusterIps.Except(updated.Status.ClusterIps)]);
    }

    /// <summary>
    /// A CLUSTER_IP service that gains its second family (single- to dual-stack) takes an address
    /// of it (the one spec.cluster_ips[1] asks for, if any), claimed in the update's commit; one
    /// that loses it keeps its primary address alone (the other is released after the commit).
    /// Null when its families did not change.
    /// </summary>
    private async Task<Reservation?> RestackAsync(Service current, Service updated)
    {
        if (updated.Spec.Type != ServiceType.ClusterIp || updated.Spec.IpFamilies.SequenceEqual(current.Spec.IpFamilies)) return null;
        var held = current.Status.ClusterIps;
        string[] added = [];
        var allocator = Allocator;
        if (updated.Spec.IpFamilies.Count > held.Count)
        {
            added = await allocator.AllocateAsync(Key, [.. updated.Spec.IpFamilies], [.. updated.Spec.ClusterIps], first: 1);
        }
        updated.Status.ClusterIps.Clear();
        updated.Status.ClusterIps.Add(held.Take(updated.Spec.IpFamilies.Count).Concat(added));
        return new Reservation([.. updated.Status.ClusterIps.Select(ip => Claims.ServiceIp(IPAddress.Parse(ip)))],
            () => ReleaseAsync(added),
            () => allocator.ResyncAsync());
    }

    private async Task RequireNetworkAsync(ServiceSpec spec)
    {
        if (spec.Network.Length > 0 && await Store.ReadAsync(Kinds.Network, spec.Network) is null)
        {
            throw MissingReference(Kinds.Network, spec.Network);
        }
    }

    /// <summary>The virtual IPs of a CLUSTER_IP service (the ones it asks for, or allocated), claimed in its commit.</summary>
    private async Task<Reservation> ReserveAsync(Service resource)
    {
        var spec = resource.Spec;
        if (spec.Type != ServiceType.ClusterIp)
        {
            return Reservation.None;
        }
        var allocator = Allocator;
        var ips = await allocator.AllocateAsync(Key, [.. spec.IpFamilies], [.. spec.ClusterIps], first: 0);
        resource.Status.ClusterIps.Add(ips);
        return new Reservation([.. ips.Select(ip => Claims.ServiceIp(IPAddress.Parse(ip)))],
            () => ReleaseAsync(ips),
            () => allocator.ResyncAsync());
    }

    /// <summary>
    /// An update that names no families keeps the service's own, instead of the defaults of the
    /// service ranges configured now: re-applying a manifest never changes (or, after a range was
    /// removed from the configuration, fails to match) the families the service holds addresses of.
    /// So does one that names virtual IPs the service holds (read back and sent again), or its
    /// primary one and a second for the family it gains.
    /// </summary>
    protected override void Inherit(Service current, Service requested)
    {
        if (requested.Spec is not { } spec || current.Spec.IpFamilies.Count == 0 || spec.IpFamilies.Count > 0) return;
        if (FixedFields.FirstNotHeld(current.Status.ClusterIps, spec.ClusterIps) is not null) return;
        // A service that changes type starts over, as a new one would.
        if ((spec.Type == ServiceType.Unspecified ? ServiceType.ClusterIp : spec.Type) != current.Spec.Type) return;
        if (spec.IpFamilyPolicy.Length == 0) spec.IpFamilyPolicy = current.Spec.IpFamilyPolicy;
        // A new policy keeps the primary family; the second follows the policy.
        if (spec.IpFamilyPolicy == current.Spec.IpFamilyPolicy) spec.IpFamilies.Add(current.Spec.IpFamilies);
        else spec.IpFamilies.Add(current.Spec.IpFamilies[0]);
    }

    /// <summary>
    /// As Kubernetes: the type changes only to or from EXTERNAL_NAME (the virtual IPs are then
    /// taken or given back, and the network and families are those of the new type); otherwise
    /// the type, network, families and virtual IPs stay.
    /// </summary>
    protected override Service Merge(Service current, Service requested)
    {
        if (FixedFields.Changed(current, requested) is { } fixedField) throw ControlPlaneException.Invalid(fixedField.Field, fixedField.Reason);
        var (was, now) = (current.Spec, requested.Spec);
        if (now.Type == was.Type)
        {
            // The addresses asked for stay, but only of the families kept (back to single-stack
            // drops the second). Naming the ones held changes nothing (FixedFields let only those
            // through); naming one more asks for it, going dual-stack.
            string[] asked = [.. (now.ClusterIps.Count > current.Status.ClusterIps.Count ? now.ClusterIps : was.ClusterIps).Take(now.IpFamilies.Count)];
            now.ClusterIps.Clear();
            now.ClusterIps.Add(asked);
        }
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        current.Spec = now;
        return current;
    }

    protected override Task AfterDeleteAsync(Service deleted) => ReleaseAsync(deleted);

    private Task ReleaseAsync(Service held) => ReleaseAsync([.. held.Status.ClusterIps]);

    private Task ReleaseAsync(string[] addresses) => addresses.Length == 0 ? Task.CompletedTask : Allocator.ReleaseAsync(Key, addresses);

    private IServiceIpAllocatorGrain Allocator => GrainFactory.Get<IServiceIpAllocatorGrain>(ServiceIpAllocatorGrain.Cluster);
}
