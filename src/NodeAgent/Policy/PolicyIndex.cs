using System.Net;
using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Table;

namespace ControlPlane.NodeAgent.Policy;

/// <summary>An endpoint on this node that a policy could not be applied to (it is closed instead).</summary>
public sealed record PolicyProblem(string Endpoint, PolicyDirection Direction, IReadOnlyList<string> Policies, string Reason);

/// <summary>
/// The agent's incremental model of network policy: policies, endpoints and namespace labels as
/// the watch delivers them, and for every selector peer of every policy the set of endpoints it
/// selects (the "address sets"), kept current as objects change. Each change marks only the local
/// endpoints whose allow-lists it can affect; <see cref="TakeChanges"/> renders those into element
/// groups for the table. Only endpoints on this node are rendered: each node filters its own.
/// </summary>
public sealed class PolicyIndex(string node, int entryLimit)
{
    public const string GroupPrefix = "policy:";

    private readonly Dictionary<string, Endpoint> _endpoints = new(StringComparer.Ordinal);
    private readonly Dictionary<string, AddressRange[]> _addresses = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<string>> _byNamespace = new(StringComparer.Ordinal);
    private readonly Dictionary<(string Key, string Value), HashSet<string>> _byLabel = [];
    private readonly Dictionary<string, IReadOnlyDictionary<string, string>> _namespaceLabels = new(StringComparer.Ordinal);
    private readonly Dictionary<string, Compiled> _policies = new(StringComparer.Ordinal);
    private readonly Dictionary<string, HashSet<Compiled>> _selectedBy = new(StringComparer.Ordinal);
    private readonly HashSet<string> _dirty = new(StringComparer.Ordinal);
    private readonly Dictionary<string, List<PolicyProblem>> _problems = new(StringComparer.Ordinal);
    private readonly List<AllowBox>[] _scratch = [[], []]; // boxes being gathered, by family (v4, v6); reused so they stop growing

    /// <summary>One policy and what its selectors currently select.</summary>
    private sealed class Compiled(NetworkPolicy policy)
    {
        public NetworkPolicy Policy { get; } = policy;
        public string Namespace => Policy.Metadata.Namespace;
        public string Key { get; } = PolicySemantics.KeyOf(policy.Metadata);

        /// <summary>Local endpoints the policy selects.</summary>
        public HashSet<string> Selected { get; } = new(StringComparer.Ordinal);

        /// <summary>Per (direction, rule, peer) of a selector peer: the endpoints it selects.</summary>
        public Dictionary<(PolicyDirection, int, int), HashSet<string>> Peers { get; } = [];

        /// <summary>The address ranges of each ip-block peer, by (direction, rule, peer).</summary>
        public Dictionary<(PolicyDirection, int, int), List<AddressRange>> Blocks { get; } = [];

        /// <summary>Egress named ports towards ip blocks or everyone: any endpoint's ports or addresses matter.</summary>
        public bool WatchesAllEndpoints { get; set; }
    }

    /// <summary>Problems of the endpoints on this node, for the agent's status.</summary>
    public IReadOnlyList<PolicyProblem> Problems => _problems.Values.SelectMany(p => p).OrderBy(p => p.Endpoint, StringComparer.Ordinal).ThenBy(p => p.Direction).ToList();

    /// <summary>Replaces everything (after a relist); every local endpoint is rendered again.</summary>
    public void Reset(IEnumerable<Endpoint> endpoints, IEnumerable<NetworkPolicy> policies, IEnumerable<Namespace> namespaces)
    {
        _dirty.UnionWith(_endpoints.Where(e => IsLocal(e.Value)).Select(e => e.Key));
        _endpoints.Clear();
        _addresses.Clear();
        _byNamespace.Clear();
        _byLabel.Clear();
        _namespaceLabels.Clear();
        _policies.Clear();
        _selectedBy.Clear();
        _problems.Clear();
        foreach (var ns in namespaces) _namespaceLabels[ns.Metadata.Name] = PolicySemantics.NamespaceLabels(ns.Metadata.Name, ns);
        foreach (var endpoint in endpoints)
        {
            var key = PolicySemantics.KeyOf(endpoint.Metadata);
            _endpoints[key] = endpoint;
            _addresses[key] = Addresses(endpoint);
            Members(endpoint.Metadata.Namespace).Add(key);
            Post(key, endpoint, add: true);
            if (IsLocal(endpoint)) _dirty.Add(key);
        }
        foreach (var policy in policies) Add(Compile(policy));
    }

    public void UpdateNamespace(string name, Namespace? now)
    {
        var labels = PolicySemantics.NamespaceLabels(name, now);
        if (_namespaceLabels.TryGetValue(name, out var old) && SameLabels(old, labels)) return;
        _namespaceLabels[name] = labels;
        if (!_byNamespace.TryGetValue(name, out var members)) return;
        foreach (var compiled in _policies.Values)
        {
            var changed = false;
            foreach (var ((direction, rule, peer), selected) in compiled.Peers)
            {
                var spec = PolicySemantics.Rules(compiled.Policy.Spec, direction)[rule].Peers[peer];
                if (spec.NamespaceSelector is null) continue;
                foreach (var key in members) changed |= Reselect(compiled, spec, selected, key, _endpoints[key]);
            }
            if (changed) _dirty.UnionWith(compiled.Selected);
        }
    }

    public void UpdatePolicy(string key, NetworkPolicy? now)
    {
        if (_policies.Remove(key, out var old))
        {
            _dirty.UnionWith(old.Selected);
            foreach (var endpoint in old.Selected) Unselect(old, endpoint);
        }
        if (now is not null) Add(Compile(now));
    }

    private void Add(Compiled compiled) => _policies[compiled.Key] = compiled;

    private void Select(Compiled compiled, string endpoint)
    {
        if (!compiled.Selected.Add(endpoint)) return;
        if (!_selectedBy.TryGetValue(endpoint, out var set)) _selectedBy[endpoint] = set = [];
        set.Add(compiled);
    }

    private void Unselect(Compiled compiled, string endpoint)
    {
        compiled.Selected.Remove(endpoint);
        if (_selectedBy.TryGetValue(endpoint, out var set) && set.Remove(compiled) && set.Count == 0) _selectedBy.Remove(endpoint);
    }

    public void UpdateEndpoint(string key, Endpoint? now)
    {
        _endpoints.TryGetValue(key, out var old);
        if (old is null && now is null) return;
        var ns = (now ?? old)!.Metadata.Namespace;
        if (old is not null) Post(key, old, add: false);
        if (now is not null) Post(key, now, add: true);
        if (now is null)
        {
            _endpoints.Remove(key);
            _addresses.Remove(key);
            Members(ns).Remove(key);
        }
        else
        {
            _endpoints[key] = now;
            _addresses[key] = Addresses(now);
            Members(ns).Add(key);
        }
        var local = now is not null && IsLocal(now);
        if (local || (old is not null && IsLocal(old))) _dirty.Add(key);
        var moved = old is null || now is null || !old.Status.Ips.Equals(now.Status.Ips) || !old.Spec.Ports.Equals(now.Spec.Ports);
        foreach (var compiled in _policies.Values)
        {
            if (compiled.Namespace == ns)
            {
                if (local && PolicySemantics.Selects(compiled.Policy, now!)) Select(compiled, key);
                else Unselect(compiled, key);
            }
            var changed = compiled.WatchesAllEndpoints && moved;
            foreach (var ((direction, rule, peer), selected) in compiled.Peers)
            {
                var spec = PolicySemantics.Rules(compiled.Policy.Spec, direction)[rule].Peers[peer];
                changed |= Reselect(compiled, spec, selected, key, now) || (moved && selected.Contains(key));
            }
            if (changed) _dirty.UnionWith(compiled.Selected);
        }
    }

    /// <summary>
    /// The element groups of the local endpoints marked since the last call (an endpoint no longer
    /// here, or selected by nothing, gets an empty group), keyed <see cref="GroupPrefix"/> + key.
    /// </summary>
    public List<(string Key, ElementGroup Group)> TakeChanges()
    {
        var changes = new List<(string, ElementGroup)>(_dirty.Count);
        foreach (var key in _dirty)
        {
            _problems.Remove(key);
            var group = _endpoints.TryGetValue(key, out var endpoint) && IsLocal(endpoint) ? Render(key, endpoint) : ElementGroup.Empty;
            changes.Add((GroupPrefix + key, group));
        }
        _dirty.Clear();
        return changes;
    }

    /// <summary>Records that the kernel refused a group from <see cref="TakeChanges"/> (it was applied closed).</summary>
    public void Refused(string groupKey, string reason)
    {
        var key = groupKey[GroupPrefix.Length..];
        if (!_endpoints.TryGetValue(key, out var endpoint)) return;
        foreach (var direction in (PolicyDirection[])[PolicyDirection.Ingress, PolicyDirection.Egress])
        {
            var selecting = Selecting(key, direction);
            if (selecting.Count > 0 && !(_problems.GetValueOrDefault(key)?.Any(p => p.Direction == direction) ?? false)) Problem(key, direction, selecting, reason);
        }
    }

    /// <summary>Marks every local endpoint for rendering (after a failed apply).</summary>
    public void InvalidateAll() => _dirty.UnionWith(_endpoints.Where(e => IsLocal(e.Value)).Select(e => e.Key));

    private bool IsLocal(Endpoint endpoint) => endpoint.Spec.Node == node;

    private static AddressRange[] Addresses(Endpoint endpoint) =>
        endpoint.Status.Ips.Select(ip => IPAddress.TryParse(ip, out var a) ? AddressRange.Single(a) : (AddressRange?)null).OfType<AddressRange>().ToArray();

    private HashSet<string> Members(string ns)
    {
        if (!_byNamespace.TryGetValue(ns, out var members)) _byNamespace[ns] = members = new(StringComparer.Ordinal);
        return members;
    }

    private void Post(string key, Endpoint endpoint, bool add)
    {
        foreach (var label in endpoint.Metadata.Labels)
        {
            var posting = (label.Key, label.Value);
            if (add)
            {
                if (!_byLabel.TryGetValue(posting, out var keys)) _byLabel[posting] = keys = new(StringComparer.Ordinal);
                keys.Add(key);
            }
            else if (_byLabel.TryGetValue(posting, out var keys))
            {
                keys.Remove(key);
                if (keys.Count == 0) _byLabel.Remove(posting);
            }
        }
    }

    /// <summary>
    /// Endpoints that may match a pod selector within <paramref name="scope"/> (null: everywhere):
    /// the smallest label posting of its match_labels, or the whole scope. Callers still match each.
    /// </summary>
    private IEnumerable<string> Candidates(LabelSelector? selector, HashSet<string>? scope)
    {
        HashSet<string>? best = null;
        foreach (var label in selector?.MatchLabels ?? [])
        {
            var posting = _byLabel.GetValueOrDefault((label.Key, label.Value));
            if (posting is null) return [];
            if (best is null || posting.Count < best.Count) best = posting;
        }
        if (best is null) return scope ?? (IEnumerable<string>)_endpoints.Keys;
        return scope is null ? best : best.Where(scope.Contains);
    }

    private IReadOnlyDictionary<string, string> LabelsOf(string ns) =>
        _namespaceLabels.TryGetValue(ns, out var labels) ? labels : _namespaceLabels[ns] = PolicySemantics.NamespaceLabels(ns, null);

    private Compiled Compile(NetworkPolicy policy)
    {
        var compiled = new Compiled(policy);
        foreach (var key in Candidates(policy.Spec.PodSelector, Members(compiled.Namespace)))
        {
            var endpoint = _endpoints[key];
            if (IsLocal(endpoint) && PolicySemantics.Selects(policy, endpoint)) Select(compiled, key);
        }
        foreach (var direction in (PolicyDirection[])[PolicyDirection.Ingress, PolicyDirection.Egress])
        {
            var rules = PolicySemantics.Rules(policy.Spec, direction);
            for (var r = 0; r < rules.Count; r++)
            {
                var named = rules[r].Ports.Any(p => p.PortCase == NetworkPolicyPort.PortOneofCase.Name);
                if (direction == PolicyDirection.Egress && named && (rules[r].Peers.Count == 0 || rules[r].Peers.Any(p => p.IpBlock is not null)))
                {
                    compiled.WatchesAllEndpoints = true;
                }
                for (var p = 0; p < rules[r].Peers.Count; p++)
                {
                    var peer = rules[r].Peers[p];
                    if (peer.IpBlock is not null)
                    {
                        compiled.Blocks[(direction, r, p)] = PolicySemantics.BlockRanges(peer.IpBlock);
                        continue;
                    }
                    var selected = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var key in Candidates(peer.PodSelector, peer.NamespaceSelector is null ? Members(compiled.Namespace) : null))
                    {
                        var endpoint = _endpoints[key];
                        if (PolicySemantics.PeerSelects(peer, compiled.Namespace, endpoint, LabelsOf(endpoint.Metadata.Namespace))) selected.Add(key);
                    }
                    compiled.Peers[(direction, r, p)] = selected;
                }
            }
        }
        _dirty.UnionWith(compiled.Selected);
        return compiled;
    }

    private bool Reselect(Compiled compiled, NetworkPolicyPeer peer, HashSet<string> selected, string key, Endpoint? endpoint)
    {
        var match = endpoint is not null && PolicySemantics.PeerSelects(peer, compiled.Namespace, endpoint, LabelsOf(endpoint.Metadata.Namespace));
        return match ? selected.Add(key) : selected.Remove(key);
    }

    /// <summary>One local endpoint's isolation and allow-list elements, for both directions.</summary>
    private ElementGroup Render(string key, Endpoint endpoint)
    {
        var locals = _addresses[key];
        var elements = new List<(string, NftElement)>();
        var chains = new List<string>();
        foreach (var direction in (PolicyDirection[])[PolicyDirection.Ingress, PolicyDirection.Egress])
        {
            var selecting = Selecting(key, direction);
            if (selecting.Count == 0) continue;
            var boxes = _scratch;
            boxes[0].Clear();
            boxes[1].Clear();
            foreach (var compiled in selecting) AddRules(compiled, direction, endpoint, boxes);
            // An endpoint always reaches itself (as Explain says): through its own service's
            // virtual IP the packet comes back with its own address as the source, and the
            // hairpin masquerade comes only after these checks.
            foreach (var local in locals) boxes[local.V6 ? 1 : 0].Add(AllowBox.AnyPort(local));
            var entries = new List<(string, NftElement)>(boxes[0].Count + boxes[1].Count);
            foreach (var local in locals)
            {
                var family = local.V6 ? FamilyLayout.V6 : FamilyLayout.V4;
                elements.Add((PolicyRuleset.Isolated(family, direction), PolicyRuleset.IsolationEntry(local, direction)));
                chains.Add(PolicyRuleset.Chain(family, direction, PolicyRuleset.Shard(local)));
                foreach (var box in AllowList.Normalize(boxes[local.V6 ? 1 : 0], local.V6)) entries.Add(PolicyRuleset.Entry(local, direction, box));
            }
            if (entries.Count > entryLimit)
            {
                // Fail closed: the endpoint stays isolated in this direction with nothing allowed.
                Problem(key, direction, selecting, $"its {direction.ToString().ToLowerInvariant()} allow-list needs {entries.Count} entries, more than this node's limit of {entryLimit}; nothing is allowed until the policies select fewer peers or ports");
                continue;
            }
            elements.AddRange(entries);
        }
        return new ElementGroup(elements, chains, []);
    }

    private List<Compiled> Selecting(string key, PolicyDirection direction) => _selectedBy.TryGetValue(key, out var set)
        ? set.Where(c => PolicySemantics.Affects(c.Policy.Spec, direction)).OrderBy(c => c.Key, StringComparer.Ordinal).ToList()
        : [];

    private void Problem(string key, PolicyDirection direction, List<Compiled> policies, string reason)
    {
        if (!_problems.TryGetValue(key, out var list)) _problems[key] = list = [];
        list.Add(new PolicyProblem(key, direction, policies.Select(p => p.Key).ToList(), reason));
    }

    /// <summary>The boxes the policy's rules of one direction allow for a local endpoint.</summary>
    private void AddRules(Compiled compiled, PolicyDirection direction, Endpoint self, List<AllowBox>[] boxes)
    {
        var rules = PolicySemantics.Rules(compiled.Policy.Spec, direction);
        for (var r = 0; r < rules.Count; r++)
        {
            var rule = rules[r];
            // Ports that do not depend on the peer: numbers, whole protocols, and (ingress) names resolved on this endpoint.
            var fixedPorts = new List<PortRange>();
            var namedTowardsPeer = new List<NetworkPolicyPort>();
            foreach (var port in rule.Ports)
            {
                if (direction == PolicyDirection.Egress && port.PortCase == NetworkPolicyPort.PortOneofCase.Name) namedTowardsPeer.Add(port);
                else if (PolicySemantics.Resolve(port, self) is { } range) fixedPorts.Add(range);
            }
            var anyPort = rule.Ports.Count == 0;
            if (anyPort || fixedPorts.Count > 0)
            {
                foreach (var peers in PeerRanges(compiled, direction, r, self.Spec.Network))
                {
                    var list = boxes[peers.V6 ? 1 : 0];
                    if (anyPort) list.Add(AllowBox.AnyPort(peers));
                    else foreach (var ports in fixedPorts) list.Add(AllowBox.Of(peers, ports));
                }
            }
            if (namedTowardsPeer.Count > 0)
            {
                // Egress to a named port: resolved on each destination endpoint the rule reaches.
                foreach (var (destination, address) in PeerEndpoints(compiled, direction, r, self.Spec.Network))
                {
                    foreach (var port in namedTowardsPeer)
                    {
                        if (PolicySemantics.Resolve(port, destination) is { } range) boxes[address.V6 ? 1 : 0].Add(AllowBox.Of(address, range));
                    }
                }
            }
        }
    }

    /// <summary>
    /// The peer addresses of a rule: ip blocks and the addresses of the endpoints its selectors
    /// select on <paramref name="network"/> (no peers: all). Endpoints of other networks are left
    /// out: networks never reach each other, so their entries would allow nothing and count
    /// against <see cref="AgentOptions.PolicyEntryLimit"/> (a selector across namespaces picks
    /// up every network's endpoints).
    /// </summary>
    private IEnumerable<AddressRange> PeerRanges(Compiled compiled, PolicyDirection direction, int r, string network)
    {
        var rule = PolicySemantics.Rules(compiled.Policy.Spec, direction)[r];
        if (rule.Peers.Count == 0)
        {
            yield return AddressRange.All(false);
            yield return AddressRange.All(true);
            yield break;
        }
        for (var p = 0; p < rule.Peers.Count; p++)
        {
            if (rule.Peers[p].IpBlock is not null)
            {
                foreach (var range in compiled.Blocks[(direction, r, p)]) yield return range;
                continue;
            }
            foreach (var key in compiled.Peers[(direction, r, p)])
            {
                if (_endpoints[key].Spec.Network != network) continue;
                foreach (var address in _addresses[key]) yield return address;
            }
        }
    }

    /// <summary>The addresses of endpoints on <paramref name="network"/> that a rule reaches: through selectors, inside ip blocks, or all (no peers).</summary>
    private IEnumerable<(Endpoint, AddressRange)> PeerEndpoints(Compiled compiled, PolicyDirection direction, int r, string network)
    {
        var rule = PolicySemantics.Rules(compiled.Policy.Spec, direction)[r];
        var blocks = Enumerable.Range(0, rule.Peers.Count).Where(p => rule.Peers[p].IpBlock is not null).SelectMany(p => compiled.Blocks[(direction, r, p)]).ToList();
        var selected = new HashSet<string>(StringComparer.Ordinal);
        for (var p = 0; p < rule.Peers.Count; p++)
        {
            if (rule.Peers[p].IpBlock is null) selected.UnionWith(compiled.Peers[(direction, r, p)]);
        }
        foreach (var (key, endpoint) in _endpoints)
        {
            if (endpoint.Spec.Network != network) continue;
            var all = rule.Peers.Count == 0 || selected.Contains(key);
            foreach (var address in _addresses[key])
            {
                if (all || blocks.Any(b => b.Contains(address))) yield return (endpoint, address);
            }
        }
    }

    private static bool SameLabels(IReadOnlyDictionary<string, string> a, IReadOnlyDictionary<string, string> b) =>
        a.Count == b.Count && a.All(kv => b.TryGetValue(kv.Key, out var v) && v == kv.Value);
}
