using System.Net;
using ControlPlane.Cli.Connection;
using ControlPlane.Cli.Manifests;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.Addressing;
using ControlPlane.Contracts.Updates;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Cli.Apply;

/// <summary>
/// The read-only half of apply, and all of <c>--dry-run=server</c>: reads every object the
/// manifests name and every object they refer to, decides create or update, and reports what the
/// server would refuse and can be known without writing: a namespace, network or node that exists
/// neither on the server nor in the manifests; a change to an immutable field; a stale etag; a VNI
/// or address range that another network, the service ranges or a joined peer cluster holds; a
/// requested endpoint address outside its network; a ClusterPeer named with this cluster's own id.
/// The server has no validate-only call, so this is as far as a dry run can see: allocation
/// (a free address or virtual IP) is only checked by the write itself.
/// </summary>
internal sealed class ApplyPlanner(ServerSet servers, int concurrency)
{
    private readonly Dictionary<(ResourceKind, string), Task<IMessage?>> _lookups = [];
    private readonly Lock _lock = new();

    public async Task<(List<PlannedChange> Plan, List<ManifestProblem> Problems)> PlanAsync(IReadOnlyList<ManifestDocument> documents, CancellationToken cancellationToken)
    {
        var problems = new List<ManifestProblem>();
        await ListLargeGroupsAsync(documents, cancellationToken);
        var existing = await Bounded.MapAsync(documents, concurrency, (d, token) => GetAsync(d.Kind, d.Meta.Namespace, d.Meta.Name, token), cancellationToken);
        var plan = documents.Select((d, i) => new PlannedChange(d, existing[i])).ToList();
        var inManifests = documents.Select(d => (d.Kind, d.Meta.Name)).Where(k => !k.Kind.Namespaced).ToHashSet();

        foreach (var change in plan)
        {
            var document = change.Document;
            var meta = document.Meta;
            if (meta.Etag.Length > 0 && change.Existing is null)
                problems.Add(document.Problem("metadata.etag", "is set, but the object does not exist (remove the etag to create it)"));
            else if (meta.Etag.Length > 0 && ResourceKind.MetaOf(change.Existing!).Etag != meta.Etag)
                problems.Add(document.Problem("metadata.etag", $"'{meta.Etag}' is stale: the object changed since (now '{ResourceKind.MetaOf(change.Existing!).Etag}')"));
            if (change.Existing is not null) Immutable(document, change.Existing, problems);
        }

        // References to objects that exist neither in the manifests nor on the server.
        var references = new List<(ManifestDocument Document, string Field, ResourceKind Kind, string Name)>();
        foreach (var document in documents)
        {
            if (document.Kind.Namespaced) references.Add((document, "metadata.namespace", ResourceKinds.Namespace, document.Meta.Namespace));
            switch (document.Message)
            {
                case Endpoint { Spec: { } spec }:
                    references.Add((document, "spec.network", ResourceKinds.Network, spec.Network));
                    references.Add((document, "spec.node", ResourceKinds.Node, spec.Node));
                    break;
                case Service { Spec: { } spec } when spec.Network.Length > 0:
                    references.Add((document, "spec.network", ResourceKinds.Network, spec.Network));
                    break;
            }
        }
        var missing = references.Where(r => r.Name.Length > 0 && !inManifests.Contains((r.Kind, r.Name))).ToList();
        var found = await Bounded.MapAsync(missing, concurrency, (r, token) => GetAsync(r.Kind, string.Empty, r.Name, token), cancellationToken);
        for (var i = 0; i < missing.Count; i++)
        {
            if (found[i] is null)
                problems.Add(missing[i].Document.Problem(missing[i].Field, $"{missing[i].Kind.Name.ToLowerInvariant()} '{missing[i].Name}' exists neither on the server nor in the manifests"));
        }

        await NetworksAsync(plan, problems, cancellationToken);
        await PeersAsync(documents, problems, cancellationToken);
        return (plan, problems);
    }

    /// <summary>A ClusterPeer named like this cluster (ClusterSet/GetInfo): the server refuses it, a peer is named by its own cluster id.</summary>
    private async Task PeersAsync(IReadOnlyList<ManifestDocument> documents, List<ManifestProblem> problems, CancellationToken cancellationToken)
    {
        var peers = documents.Where(d => d.Message is ClusterPeer).ToList();
        if (peers.Count == 0) return;
        var info = await servers.CallAsync((c, o) => c.GetClusterInfoAsync(o), cancellationToken);
        foreach (var peer in peers.Where(p => p.Meta.Name == info.ClusterId))
            problems.Add(peer.Problem("metadata.name", $"'{info.ClusterId}' is this cluster's own id (ClusterSet:ClusterId); a peer is named by its cluster id"));
    }

    /// <summary>A change the server would refuse (<see cref="FixedFields"/>), found before anything is sent.</summary>
    private static void Immutable(ManifestDocument document, IMessage existing, List<ManifestProblem> problems)
    {
        if (FixedFields.Changed(existing, document.Message) is not { } changed) return;
        problems.Add(document.Problem(changed.Field, changed.Reason == FixedFields.Immutable
            ? $"is immutable (the stored object has {(changed.Stored.Length == 0 ? "none" : changed.Stored)}); delete and re-create the object to change it"
            : $"{changed.Reason}; delete and re-create the object to change it"));
    }

    /// <summary>VNIs and ranges of networks to create against every other network, and endpoint addresses against their network.</summary>
    private async Task NetworksAsync(List<PlannedChange> plan, List<ManifestProblem> problems, CancellationToken cancellationToken)
    {
        var creates = plan.Where(c => c.IsCreate && c.Document.Message is Network).ToList();
        var known = new Dictionary<string, NetworkSpec>(StringComparer.Ordinal);
        foreach (var change in plan)
        {
            if (change.Document.Message is Network { Spec: { } spec } network) known[network.Metadata.Name] = spec;
        }
        var claims = new List<(string Owner, NetworkSpec Spec)>();
        // Ranges no new network may overlap besides other networks': this cluster's service
        // ranges and the ranges of the peer clusters that joined its ClusterSet.
        var held = new List<(string Range, string Described)>();
        // The stored networks: for new networks to be checked against, and for the requested
        // addresses of new endpoints on networks the input does not hold.
        var addressesOnStored = plan.Any(c => c.IsCreate && c.Document.Message is Endpoint { Spec: { Ips.Count: > 0 } e } && !known.ContainsKey(e.Network));
        if (creates.Count > 0 || addressesOnStored)
        {
            await foreach (var stored in ListAsync(ResourceKinds.Network, string.Empty, cancellationToken))
            {
                var network = (Network)stored;
                known.TryAdd(network.Metadata.Name, network.Spec);
                claims.Add((network.Metadata.Name, network.Spec));
            }
        }
        if (creates.Count > 0)
        {
            var info = await servers.CallAsync((c, o) => c.GetClusterInfoAsync(o), cancellationToken);
            held.AddRange(info.ServiceRanges.Select(r => (r, $"the service range {r}")));
            await foreach (var stored in ListAsync(ResourceKinds.ClusterPeer, string.Empty, cancellationToken))
            {
                var peer = (ClusterPeer)stored;
                if (Format.Condition(peer.Status?.Conditions, "Joined") != "True") continue;
                held.AddRange(peer.Status!.Ranges.Select(r => (r, $"{r} of peer cluster '{peer.Metadata.Name}'")));
            }
        }
        foreach (var change in creates)
        {
            var network = (Network)change.Document.Message;
            var spec = network.Spec;
            if (spec is null) continue;
            foreach (var (owner, other) in claims.Where(c => c.Owner != network.Metadata.Name))
            {
                if (spec.Vni != 0 && spec.Vni == other.Vni) problems.Add(change.Document.Problem("spec.vni", $"VNI {spec.Vni} is already used by network '{owner}'"));
                if (Overlaps(spec.Ipv4Cidr, other.Ipv4Cidr)) problems.Add(change.Document.Problem("spec.ipv4_cidr", $"{spec.Ipv4Cidr} overlaps {other.Ipv4Cidr} of network '{owner}'"));
                if (Overlaps(spec.Ipv6Cidr, other.Ipv6Cidr)) problems.Add(change.Document.Problem("spec.ipv6_cidr", $"{spec.Ipv6Cidr} overlaps {other.Ipv6Cidr} of network '{owner}'"));
            }
            foreach (var (range, described) in held)
            {
                if (Overlaps(spec.Ipv4Cidr, range)) problems.Add(change.Document.Problem("spec.ipv4_cidr", $"{spec.Ipv4Cidr} overlaps {described}"));
                if (Overlaps(spec.Ipv6Cidr, range)) problems.Add(change.Document.Problem("spec.ipv6_cidr", $"{spec.Ipv6Cidr} overlaps {described}"));
            }
            claims.Add(($"{network.Metadata.Name}' (in {change.Document.Source} {change.Document.Position})", spec));
        }
        foreach (var change in plan.Where(c => c.IsCreate))
        {
            if (change.Document.Message is not Endpoint { Spec: { } spec } || !known.TryGetValue(spec.Network, out var net)) continue;
            for (var i = 0; i < spec.Ips.Count; i++)
            {
                if (HostAddresses.Parse(spec.Ips[i], out _) is not { } address) continue;
                var range = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetwork ? net.Ipv4Cidr : net.Ipv6Cidr;
                if (IpPrefix.ParseStored(range, out _) is not { } prefix || !prefix.Contains(address))
                    problems.Add(change.Document.Problem($"spec.ips[{i}]", $"{address} is outside network '{spec.Network}' ({(range.Length == 0 ? "no range of its family" : range)})"));
            }
        }
    }

    private static bool Overlaps(string a, string b)
    {
        if (a.Length == 0 || b.Length == 0) return false;
        return IpPrefix.ParseStored(a, out _) is { } x && IpPrefix.ParseStored(b, out _) is { } y && x.Overlaps(y);
    }

    /// <summary>
    /// Many documents of one kind in one namespace: one List (a page per thousand objects) reads
    /// them all instead of a Get each; the lookups below then find them (or their absence) here.
    /// </summary>
    private async Task ListLargeGroupsAsync(IReadOnlyList<ManifestDocument> documents, CancellationToken cancellationToken)
    {
        foreach (var group in documents.GroupBy(d => (d.Kind, d.Meta.Namespace)).Where(g => g.Count() >= ListThreshold))
        {
            var (kind, ns) = group.Key;
            var stored = new Dictionary<string, IMessage>(StringComparer.Ordinal);
            await foreach (var item in ListAsync(kind, ns, cancellationToken)) stored[ResourceKind.MetaOf(item).Name] = item;
            lock (_lock)
            {
                foreach (var document in group)
                    _lookups[(kind, ns + "/" + document.Meta.Name)] = Task.FromResult(stored.GetValueOrDefault(document.Meta.Name));
            }
        }
    }

    /// <summary>From this many documents of a kind in a namespace on, the plan lists instead of getting each.</summary>
    private const int ListThreshold = 50;

    private Task<IMessage?> GetAsync(ResourceKind kind, string ns, string name, CancellationToken cancellationToken)
    {
        lock (_lock)
        {
            if (!_lookups.TryGetValue((kind, ns + "/" + name), out var lookup))
            {
                lookup = FetchAsync(kind, ns, name, cancellationToken);
                _lookups[(kind, ns + "/" + name)] = lookup;
            }
            return lookup;
        }
    }

    private async Task<IMessage?> FetchAsync(ResourceKind kind, string ns, string name, CancellationToken cancellationToken)
    {
        if (name.Length == 0) return null;
        try
        {
            return await servers.CallAsync((c, o) => kind.Get(c, ns, name, o), cancellationToken);
        }
        catch (RpcException e) when (e.StatusCode is StatusCode.NotFound)
        {
            return null;
        }
        catch (RpcException e)
        {
            throw new CliException($"reading {kind.Name} {(ns.Length > 0 ? ns + "/" : "")}{name}: {StatusNames.Describe(e)}");
        }
    }

    private async IAsyncEnumerable<IMessage> ListAsync(ResourceKind kind, string ns, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken cancellationToken)
    {
        var token = string.Empty;
        do
        {
            var request = new ListRequest { Namespace = ns, PageSize = 1000, PageToken = token };
            var (items, next) = await servers.CallAsync((c, o) => kind.ListPage(c, request, o), cancellationToken);
            foreach (var item in items) yield return item;
            token = next;
        }
        while (token.Length > 0);
    }
}
