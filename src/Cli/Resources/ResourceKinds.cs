using System.Globalization;
using ControlPlane.Cli.Output;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;

namespace ControlPlane.Cli.Resources;

/// <summary>Every kind netctl handles, with its calls and columns.</summary>
internal static class ResourceKinds
{
    public static readonly ResourceKind Namespace = Make(
        "Namespace", ["namespace", "namespaces", "ns"], namespaced: false, tier: 0, Contracts.V1.Namespace.Descriptor, Kind.Namespace,
        c => c.Namespaces, l => l.Namespaces, l => l.NextPageToken, e => e.Namespace,
        [
            new("LABELS", m => Format.Labels(Meta(m).Labels), Wide: true),
        ]);

    public static readonly ResourceKind Network = Make(
        "Network", ["network", "networks", "net"], namespaced: false, tier: 1, Contracts.V1.Network.Descriptor, Kind.Network,
        c => c.Networks, l => l.Networks, l => l.NextPageToken, e => e.Network,
        [
            new("VNI", m => As<Network>(m).Spec?.Vni.ToString(CultureInfo.InvariantCulture) ?? ""),
            new("IPV4", m => As<Network>(m).Spec?.Ipv4Cidr ?? ""),
            new("IPV6", m => Dash(As<Network>(m).Spec?.Ipv6Cidr)),
            new("MTU", m => As<Network>(m).Status?.Mtu.ToString(CultureInfo.InvariantCulture) ?? ""),
            new("BLOCKS", m => (As<Network>(m).Status?.Blocks.Count ?? 0).ToString(CultureInfo.InvariantCulture), Wide: true),
            new("GATEWAYS", m => Format.List(new[] { As<Network>(m).Status?.Ipv4Gateway, As<Network>(m).Status?.Ipv6Gateway }.Where(g => !string.IsNullOrEmpty(g))!), Wide: true),
            new("LABELS", m => Format.Labels(Meta(m).Labels), Wide: true),
        ]);

    public static readonly ResourceKind Node = Make(
        "Node", ["node", "nodes", "no"], namespaced: false, tier: 2, Contracts.V1.Node.Descriptor, Kind.Node,
        c => c.Nodes, l => l.Nodes, l => l.NextPageToken, e => e.Node,
        [
            new("READY", m => Format.Bool(As<Node>(m).Status?.Ready ?? false)),
            new("UNDERLAY", m => As<Node>(m).Spec?.UnderlayIp ?? ""),
            new("POLICY-ISSUES", m => (As<Node>(m).Status?.Agent?.PolicyIssues.Count ?? 0).ToString(CultureInfo.InvariantCulture)),
            new("VTEP-MAC", m => As<Node>(m).Status?.VtepMac ?? "", Wide: true),
            new("SINCE", m => Format.Time(As<Node>(m).Status?.ReadyChangeTime), Wide: true),
            new("LABELS", m => Format.Labels(Meta(m).Labels), Wide: true),
        ]);

    public static readonly ResourceKind Endpoint = Make(
        "Endpoint", ["endpoint", "endpoints", "ep"], namespaced: true, tier: 3, Contracts.V1.Endpoint.Descriptor, Kind.Endpoint,
        c => c.Endpoints, l => l.Endpoints, l => l.NextPageToken, e => e.Endpoint,
        [
            new("NETWORK", m => As<Endpoint>(m).Spec?.Network ?? ""),
            new("NODE", m => As<Endpoint>(m).Spec?.Node ?? ""),
            new("READY", m => Format.Bool(As<Endpoint>(m).Status?.EffectiveReady ?? false)),
            new("IPS", m => Format.List(As<Endpoint>(m).Status?.Ips ?? [])),
            new("MAC", m => As<Endpoint>(m).Status?.Mac ?? "", Wide: true),
            new("PORTS", m => Format.NamedPorts(As<Endpoint>(m).Spec?.Ports ?? []), Wide: true),
            new("LABELS", m => Format.Labels(Meta(m).Labels), Wide: true),
        ]);

    public static readonly ResourceKind Service = Make(
        "Service", ["service", "services", "svc"], namespaced: true, tier: 3, Contracts.V1.Service.Descriptor, Kind.Service,
        c => c.Services, l => l.Services, l => l.NextPageToken, e => e.Service,
        [
            new("TYPE", m => ServiceType(As<Service>(m).Spec)),
            new("NETWORK", m => Dash(As<Service>(m).Spec?.Network)),
            new("CLUSTER-IPS", m => Format.List(As<Service>(m).Status?.ClusterIps ?? [], "<none>")),
            new("PORTS", m => Format.ServicePorts(As<Service>(m).Spec?.Ports ?? [])),
            new("SELECTOR", m => Format.Labels(As<Service>(m).Spec?.Selector ?? new()), Wide: true),
            new("EXTERNAL-NAME", m => Dash(As<Service>(m).Spec?.ExternalName), Wide: true),
        ]);

    public static readonly ResourceKind NetworkPolicy = Make(
        "NetworkPolicy", ["networkpolicy", "networkpolicies", "netpol"], namespaced: true, tier: 3, Contracts.V1.NetworkPolicy.Descriptor, Kind.NetworkPolicy,
        c => c.NetworkPolicies, l => l.NetworkPolicies, l => l.NextPageToken, e => e.NetworkPolicy,
        [
            new("POD-SELECTOR", m => Format.Selector(As<NetworkPolicy>(m).Spec?.PodSelector)),
            new("TYPES", m => PolicyTypes(As<NetworkPolicy>(m).Spec)),
            new("INGRESS-RULES", m => (As<NetworkPolicy>(m).Spec?.Ingress.Count ?? 0).ToString(CultureInfo.InvariantCulture), Wide: true),
            new("EGRESS-RULES", m => (As<NetworkPolicy>(m).Spec?.Egress.Count ?? 0).ToString(CultureInfo.InvariantCulture), Wide: true),
        ],
        kubernetesApiVersion: "networking.k8s.io/v1");

    /// <summary>The derived endpoint sets of services: read-only.</summary>
    public static readonly ResourceKind ServiceEndpoints = new()
    {
        Name = "ServiceEndpoints",
        Aliases = ["serviceendpoints", "serviceendpoints", "sep"],
        Namespaced = true,
        ReadOnly = true,
        Tier = 4,
        Descriptor = Contracts.V1.ServiceEndpoints.Descriptor,
        WatchKind = Kind.ServiceEndpoints,
        Get = async (c, ns, name, o) => await Sets(c).GetAsync(new GetRequest { Namespace = ns, Name = name }, o),
        ListPage = async (c, r, o) =>
        {
            var page = await Sets(c).ListAsync(r, o);
            return ([.. page.ServiceEndpoints], page.NextPageToken);
        },
        FromEvent = e => e.ServiceEndpoints,
        Columns =
        [
            new("NETWORK", m => Dash(As<ServiceEndpoints>(m).Network)),
            new("READY", m => $"{As<ServiceEndpoints>(m).Endpoints.Count(e => e.Ready)}/{As<ServiceEndpoints>(m).Endpoints.Count}"),
            new("ENDPOINTS", m => Format.List(As<ServiceEndpoints>(m).Endpoints.Select(e => e.Name))),
        ],
    };

    /// <summary>
    /// Another control plane of the ClusterSet, named by its cluster id. Applied after the
    /// networks: a local network in the same apply then keeps its range, and a peer that
    /// overlaps it is refused rather than racing it. The link (status.connection) is computed by
    /// a Get only: a listing shows "-" under CONNECTED and PEER-JOINED (how the peer counts this
    /// cluster, from its own ClusterPeer for it).
    /// </summary>
    public static readonly ResourceKind ClusterPeer = Make(
        "ClusterPeer", ["clusterpeer", "clusterpeers", "cp"], namespaced: false, tier: 2, Contracts.V1.ClusterPeer.Descriptor, Kind.ClusterPeer,
        c => c.ClusterPeers, l => l.ClusterPeers, l => l.NextPageToken, e => e.ClusterPeer,
        [
            new("JOINED", m => Format.Condition(As<ClusterPeer>(m).Status?.Conditions, "Joined")),
            new("CONNECTED", m => As<ClusterPeer>(m).Status?.Connection is { } link ? Format.Bool(link.Connected) : "-"),
            new("ADDRESSES", m => Format.List(As<ClusterPeer>(m).Spec?.Addresses ?? [])),
            new("REASON", m => Dash(As<ClusterPeer>(m).Status?.Conditions.FirstOrDefault(c => c.Type == "Joined")?.Reason), Wide: true),
            new("PEER-JOINED", m => As<ClusterPeer>(m).Status?.Connection?.PeerJoined is { } seen ? seen.Status : "-", Wide: true),
            new("RANGES", m => Format.List(As<ClusterPeer>(m).Status?.Ranges ?? []), Wide: true),
            new("NODES", m => (As<ClusterPeer>(m).Status?.Nodes.Count ?? 0).ToString(CultureInfo.InvariantCulture), Wide: true),
        ]);

    /// <summary>Exports the service of its namespace and name to the ClusterSet; applied after the services.</summary>
    public static readonly ResourceKind ServiceExport = Make(
        "ServiceExport", ["serviceexport", "serviceexports", "svcex"], namespaced: true, tier: 4, Contracts.V1.ServiceExport.Descriptor, Kind.ServiceExport,
        c => c.ServiceExports, l => l.ServiceExports, l => l.NextPageToken, e => e.ServiceExport,
        [
            new("VALID", m => Format.Condition(As<ServiceExport>(m).Status?.Conditions, "Valid")),
            new("CONFLICT", m => Format.Condition(As<ServiceExport>(m).Status?.Conditions, "Conflict")),
            new("LABELS", m => Format.Labels(Meta(m).Labels), Wide: true),
        ],
        kubernetesApiVersion: McsApiVersion);

    /// <summary>The ClusterSet's services as this cluster imports them: derived, read-only.</summary>
    public static readonly ResourceKind ServiceImport = Make(
        "ServiceImport", ["serviceimport", "serviceimports", "svcim"], namespaced: true, tier: 5, Contracts.V1.ServiceImport.Descriptor, Kind.ServiceImport,
        c => c.ServiceImports, l => l.ServiceImports, l => l.NextPageToken, e => e.ServiceImport,
        [
            new("TYPE", m => Format.ImportType(As<ServiceImport>(m).Spec?.Type)),
            new("IPS", m => Format.List(As<ServiceImport>(m).Spec?.Ips ?? [], "<none>")),
            new("CLUSTERS", m => Format.List(As<ServiceImport>(m).Status?.Clusters.Select(c => c.Cluster) ?? [])),
            new("PORTS", m => Format.ServicePorts(As<ServiceImport>(m).Spec?.Ports ?? []), Wide: true),
            new("READY", m => ImportReady(As<ServiceImport>(m).Status), Wide: true),
        ],
        readOnly: true, kubernetesApiVersion: McsApiVersion);

    /// <summary>In apply order.</summary>
    public static readonly IReadOnlyList<ResourceKind> All =
        [Namespace, Network, Node, ClusterPeer, Endpoint, Service, NetworkPolicy, ServiceEndpoints, ServiceExport, ServiceImport];

    /// <summary>The kind named on the command line (any alias, any letter case), or null.</summary>
    public static ResourceKind? Find(string name) =>
        All.FirstOrDefault(k => k.Aliases.Contains(name.ToLowerInvariant()) || string.Equals(k.Name, name, StringComparison.OrdinalIgnoreCase));

    /// <summary>The kind of a manifest's <c>kind:</c> (exact spelling, as Kubernetes has it); read-only kinds too, which apply refuses.</summary>
    public static ResourceKind? FromManifestKind(string kind) => All.FirstOrDefault(k => k.Name == kind);

    public static IEnumerable<string> CommandLineNames => All.Select(k => k.Aliases[0]);

    private static ServiceEndpointSets.ServiceEndpointSetsClient Sets(ControlPlaneClient client) => new(client.Invoker);

    private static ObjectMeta Meta(IMessage m) => ResourceKind.MetaOf(m);

    private static T As<T>(IMessage m) => (T)m;

    private static string Dash(string? value) => string.IsNullOrEmpty(value) ? "-" : value;

    private static string ServiceType(ServiceSpec? spec) => spec?.Type switch
    {
        Contracts.V1.ServiceType.Headless => "Headless",
        Contracts.V1.ServiceType.ExternalName => "ExternalName",
        _ => "ClusterIP",
    };

    /// <summary>Kubernetes' Multi-Cluster Services API group, as its users write ServiceExports.</summary>
    private const string McsApiVersion = "multicluster.x-k8s.io/v1alpha1";

    /// <summary>Ready endpoints of all exporting clusters together, out of all their endpoints: "2/3".</summary>
    private static string ImportReady(ServiceImportStatus? status)
    {
        var endpoints = status?.Clusters.SelectMany(c => c.Endpoints).ToList() ?? [];
        return $"{endpoints.Count(e => e.Ready)}/{endpoints.Count}";
    }

    private static string PolicyTypes(NetworkPolicySpec? spec)
    {
        if (spec is null) return "";
        if (spec.PolicyTypes.Count > 0) return string.Join(",", spec.PolicyTypes);
        return spec.Egress.Count > 0 ? "Ingress,Egress" : "Ingress";
    }

    private static ResourceKind Make<T, TList>(string name, string[] aliases, bool namespaced, int tier, MessageDescriptor descriptor, Kind watchKind,
        Func<ControlPlaneClient, ResourceClient<T, TList>> client, Func<TList, IEnumerable<T>> items, Func<TList, string> next,
        Func<WatchEvent, T?> fromEvent, Column[] columns, bool readOnly = false, string? kubernetesApiVersion = null)
        where T : class, IMessage<T>
        where TList : class, IMessage<TList> => new()
    {
        Name = name,
        Aliases = aliases,
        Namespaced = namespaced,
        ReadOnly = readOnly,
        KubernetesApiVersion = kubernetesApiVersion,
        Tier = tier,
        Descriptor = descriptor,
        WatchKind = watchKind,
        Columns = columns,
        Get = async (c, ns, n, o) => await client(c).GetAsync(ns, n, o),
        ListPage = async (c, r, o) =>
        {
            var page = await client(c).ListAsync(r, o);
            return ([.. items(page)], next(page));
        },
        // A read-only kind's service has no writes: none are bound.
        Create = readOnly ? null : async (c, m, o) => await client(c).CreateAsync((T)m, o),
        Update = readOnly ? null : async (c, m, o) => await client(c).UpdateAsync((T)m, o),
        Delete = readOnly ? null : (c, ns, n, etag, o) => client(c).DeleteAsync(ns, n, etag, o),
        FromEvent = fromEvent,
    };

    /// <summary>The AGE column every kind ends with.</summary>
    public static string Age(IMessage message) => Format.Age(Meta(message).CreateTime, DateTimeOffset.UtcNow);
}
