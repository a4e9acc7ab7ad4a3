using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;

namespace ControlPlane.Silo.Api;

/// <summary>Every kind the API serves, by wire enum and by stored name.</summary>
public static class ResourceKinds
{
    // Programmed like the kinds below: its labels pick the peers of policies' namespace selectors.
    public static readonly ResourceKind<Namespace> Namespace = new(Kind.Namespace, Kinds.Namespace, false, r => r.Metadata ??= new(), (e, r) => e.Namespace = r, true);
    public static readonly ResourceKind<Network> Network = new(Kind.Network, Kinds.Network, false, r => r.Metadata ??= new(), (e, r) => e.Network = r, true,
        (r, p) => { if (p is not null || r.Status is not null) (r.Status ??= new()).Programmed = p; });
    public static readonly ResourceKind<Node> Node = new(Kind.Node, Kinds.Node, false, r => r.Metadata ??= new(), (e, r) => e.Node = r);
    public static readonly ResourceKind<Endpoint> Endpoint = new(Kind.Endpoint, Kinds.Endpoint, true, r => r.Metadata ??= new(), (e, r) => e.Endpoint = r, true,
        (r, p) => { if (p is not null || r.Status is not null) (r.Status ??= new()).Programmed = p; });
    public static readonly ResourceKind<Service> Service = new(Kind.Service, Kinds.Service, true, r => r.Metadata ??= new(), (e, r) => e.Service = r, true,
        (r, p) => { if (p is not null || r.Status is not null) (r.Status ??= new()).Programmed = p; });
    // A policy has no status of its own: it exists only to carry status.programmed on Get.
    public static readonly ResourceKind<NetworkPolicy> NetworkPolicy = new(Kind.NetworkPolicy, Kinds.NetworkPolicy, true, r => r.Metadata ??= new(), (e, r) => e.NetworkPolicy = r, true,
        (r, p) => r.Status = p is null ? null : new NetworkPolicyStatus { Programmed = p });
    public static readonly ResourceKind<ServiceEndpoints> ServiceEndpoints = new(Kind.ServiceEndpoints, Kinds.ServiceEndpoints, true, r => r.Metadata ??= new(), (e, r) => e.ServiceEndpoints = r, true);

    public static readonly ResourceKind<ClusterPeer> ClusterPeer = new(Kind.ClusterPeer, Kinds.ClusterPeer, false, r => r.Metadata ??= new(), (e, r) => e.ClusterPeer = r);
    public static readonly ResourceKind<ServiceExport> ServiceExport = new(Kind.ServiceExport, Kinds.ServiceExport, true, r => r.Metadata ??= new(), (e, r) => e.ServiceExport = r);
    public static readonly ResourceKind<ServiceImport> ServiceImport = new(Kind.ServiceImport, Kinds.ServiceImport, true, r => r.Metadata ??= new(), (e, r) => e.ServiceImport = r);

    public static readonly IReadOnlyList<IResourceKind> All = [Namespace, Network, Node, Endpoint, Service, NetworkPolicy, ServiceEndpoints, ClusterPeer, ServiceExport, ServiceImport];

    private static readonly Dictionary<string, IResourceKind> ByName = All.ToDictionary(k => k.Name, StringComparer.Ordinal);
    private static readonly Dictionary<Kind, IResourceKind> ByKind = All.ToDictionary(k => k.Kind);

    public static IResourceKind Of(string name) => ByName[name];

    public static IResourceKind? Of(Kind kind) => ByKind.GetValueOrDefault(kind);
}
