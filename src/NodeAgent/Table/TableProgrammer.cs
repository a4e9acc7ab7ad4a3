using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Contracts.Policy;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Services;

namespace ControlPlane.NodeAgent.Table;

/// <summary>What one service, the group of local endpoints or one endpoint's policy puts into the table: elements, the data chains they jump to, and (services) the ports they program.</summary>
public sealed record ElementGroup(IReadOnlyList<(string Set, NftElement Element)> Elements, IReadOnlyList<string> Chains, IReadOnlyList<ServicePortProgram> Ports)
{
    public static readonly ElementGroup Empty = new([], [], []);
}


/// <summary>
/// Keeps the agent's nftables table equal to the element groups it is given. The first apply
/// reads the kernel back and changes only the difference (a restarted agent disturbs nothing);
/// after that it remembers what it programmed, and a change of one service or one endpoint's
/// policy costs one small transaction of that group's elements, whatever the size of the table.
/// A data chain (a service's balancing or affinity chain, a policy shard) is created in the
/// transaction of the first group that lists it and removed, with the sets it brought, in the
/// transaction after which no group lists it: the table holds the chains in use, as after a read-back.
/// Flows to an endpoint that left a service are cleared from conntrack (UDP) and from the
/// client-affinity maps, also those of endpoints that left while the agent was not running.
/// </summary>
public sealed class TableProgrammer(NftSocket nft)
{
    private static readonly NftSchema Schema = AgentTable.Schema;
    private static readonly IReadOnlySet<string> KernelManaged = FamilyLayout.Both.Select(f => f.Affinity).ToHashSet();
    private readonly Dictionary<string, ElementGroup> _groups = new(StringComparer.Ordinal);
    // How many of the programmed groups list each data chain; a chain is in the kernel while its count is above 0.
    private readonly Dictionary<string, int> _chainUses = new(StringComparer.Ordinal);
    private bool _converged;

    /// <summary>What one apply did.</summary>
    public sealed record Outcome(bool ReadBack, int ElementsAdded, int ElementsRemoved, int ConntrackCleared, bool Rebuilt = false);

    /// <summary>Forget what was programmed: the next apply reads the kernel back (after a failure).</summary>
    public void Reset()
    {
        _converged = false;
        _groups.Clear();
        _chainUses.Clear();
    }

    /// <summary>The data chains a group holds in the table: those it lists, if it has elements (an empty group is not kept).</summary>
    private static IEnumerable<string> ChainsOf(ElementGroup group) => group.Elements.Count == 0 ? [] : group.Chains.Distinct(StringComparer.Ordinal);

    /// <summary>
    /// Applies changed groups (a key with <see cref="ElementGroup.Empty"/> removes its group). With
    /// <paramref name="complete"/>, the changes are all groups there are and any other is removed.
    /// </summary>
    public Outcome Apply(IReadOnlyList<(string Key, ElementGroup Group)> changes, bool complete)
    {
        if (!_converged)
        {
            if (!complete) throw new InvalidOperationException("the first apply must be complete");
            return Converge(changes);
        }
        var work = changes.ToList();
        if (complete)
        {
            var present = changes.Select(c => c.Key).ToHashSet(StringComparer.Ordinal);
            work.AddRange(_groups.Keys.Where(k => !present.Contains(k)).Select(k => (k, ElementGroup.Empty)));
        }
        // The change in each data chain's uses: a chain whose count rises from 0 is created before the
        // elements that jump to it, one whose count falls to 0 is removed after the elements that jumped to it.
        var uses = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var (key, group) in work)
        {
            if (_groups.TryGetValue(key, out var old))
            {
                foreach (var chain in ChainsOf(old)) uses[chain] = uses.GetValueOrDefault(chain) - 1;
            }
            foreach (var chain in ChainsOf(group)) uses[chain] = uses.GetValueOrDefault(chain) + 1;
        }
        var created = new List<NftChainSpec>();
        var unused = new List<NftChainSpec>();
        foreach (var (name, delta) in uses)
        {
            var before = _chainUses.GetValueOrDefault(name);
            if (before == 0 && delta > 0) created.Add(AgentTable.DataChain(name));
            else if (before > 0 && before + delta == 0) unused.Add(AgentTable.DataChain(name));
        }
        var tx = nft.Begin();
        foreach (var chain in created)
        {
            foreach (var set in chain.OwnSets) tx.AddSet(set);
            tx.AddChain(chain.Name);
            foreach (var rule in chain.Rules) tx.AddRule(chain.Name, rule);
        }
        // Emptied first (their rules may use sets that go with them), deleted after the elements that jump to them.
        foreach (var chain in unused) tx.FlushChain(chain.Name);
        // Removed elements and old values of changed ones go first, then everything new: one transaction.
        var deletions = new List<(string, NftElement)>();
        var additions = new List<(string, NftElement)>();
        foreach (var (key, group) in work)
        {
            var old = _groups.GetValueOrDefault(key) ?? ElementGroup.Empty;
            var before = new Dictionary<(string, ElementKey), NftElement>(old.Elements.Count);
            foreach (var (set, element) in old.Elements) before[(set, ElementKey.Of(element))] = element;
            foreach (var (set, element) in group.Elements)
            {
                if (before.Remove((set, ElementKey.Of(element)), out var was))
                {
                    if (NftContents.SameValue(was, element)) continue;
                    deletions.Add((set, was));
                }
                additions.Add((set, element));
            }
            foreach (var ((set, _), element) in before) deletions.Add((set, element));
        }
        foreach (var (set, element) in deletions) tx.DeleteElement(set, element);
        foreach (var (set, element) in additions) tx.AddElement(set, element);
        foreach (var chain in unused)
        {
            tx.DeleteChain(chain.Name);
            foreach (var set in chain.OwnSets) tx.DeleteSet(set.Name);
        }
        nft.Commit(tx);

        foreach (var (name, delta) in uses)
        {
            var count = _chainUses.GetValueOrDefault(name) + delta;
            if (count > 0) _chainUses[name] = count;
            else _chainUses.Remove(name);
        }
        var cleared = 0;
        foreach (var (key, group) in work)
        {
            if (_groups.GetValueOrDefault(key) is { } old) cleared += ClearDeparted(old, group);
            if (group.Elements.Count == 0) _groups.Remove(key);
            else _groups[key] = group;
        }
        return new Outcome(false, additions.Count, deletions.Count, cleared);
    }

    /// <summary>
    /// <see cref="Apply"/>, and if the kernel refuses the transaction while groups that
    /// <paramref name="isolate"/> names are part of it: those groups go in reduced by
    /// <paramref name="reduce"/> (with everything else) first, then each whole in a transaction of
    /// its own. The groups refused again stay reduced and are returned with the kernel's reason.
    /// </summary>
    public (Outcome Outcome, IReadOnlyList<(string Key, string Reason)> Refused) ApplyIsolating(
        IReadOnlyList<(string Key, ElementGroup Group)> changes, bool complete, Func<string, bool> isolate, Func<ElementGroup, ElementGroup> reduce)
    {
        try
        {
            return (Apply(changes, complete), []);
        }
        catch (NetlinkException) when (changes.Any(c => isolate(c.Key)))
        {
            var outcome = Apply(changes.Select(c => isolate(c.Key) ? (c.Key, reduce(c.Group)) : c).ToList(), complete);
            var refused = new List<(string, string)>();
            foreach (var (key, group) in changes.Where(c => isolate(c.Key)))
            {
                try
                {
                    Apply([(key, group)], complete: false);
                }
                catch (NetlinkException e)
                {
                    refused.Add((key, e.Message));
                }
            }
            return (outcome, refused);
        }
    }

    private Outcome Converge(IReadOnlyList<(string Key, ElementGroup Group)> groups)
    {
        var before = ProgrammedServicePorts();
        var contents = new NftContents();
        foreach (var (_, group) in groups)
        {
            foreach (var (set, element) in group.Elements) contents.Set(set)[ElementKey.Of(element)] = element;
        }
        var chains = groups.SelectMany(g => ChainsOf(g.Group)).Distinct().Order(StringComparer.Ordinal).ToList();
        var result = NftTableSync.Converge(nft, Schema, chains.Select(AgentTable.DataChain).ToList(), contents, KernelManaged);
        _groups.Clear();
        foreach (var (key, group) in groups.Where(g => g.Group.Elements.Count > 0)) _groups[key] = group;
        _chainUses.Clear();
        foreach (var chain in groups.SelectMany(g => ChainsOf(g.Group))) _chainUses[chain] = _chainUses.GetValueOrDefault(chain) + 1;
        _converged = true;
        return new Outcome(true, result.ElementsAdded, result.ElementsRemoved, ClearStrays(groups, before), result.Rebuilt);
    }

    /// <summary>
    /// The service ports the kernel's table holds before a read-back converges it (keys of the
    /// dispatch and no-endpoint sets): what the agent programmed before it restarted.
    /// </summary>
    private HashSet<ElementKey> ProgrammedServicePorts()
    {
        var keys = new HashSet<ElementKey>();
        foreach (var family in FamilyLayout.Both)
        {
            foreach (var set in new[] { family.Dispatch, family.NoEndpoints })
            {
                try
                {
                    foreach (var element in nft.ListElements(set)) keys.Add(ElementKey.Of(element));
                }
                catch (NetlinkException e) when (e.Errno == NetlinkException.ENOENT)
                {
                    // No table yet (a first start), or one without this set.
                }
            }
        }
        return keys;
    }

    /// <summary>
    /// After a read-back the agent does not know what it programmed before: UDP flows and client
    /// affinities that lead to an endpoint no service port sends to now (it left while the agent
    /// was down) are cleared, as <see cref="ClearDeparted"/> clears them while it runs; so are UDP
    /// flows to a service port the table held before (<paramref name="before"/>) and holds no
    /// more (its service was deleted or changed while the agent was down). Affinities of service
    /// ports that are gone go too.
    /// </summary>
    private int ClearStrays(IReadOnlyList<(string Key, ElementGroup Group)> groups, HashSet<ElementKey> before)
    {
        var ports = groups.SelectMany(g => g.Group.Ports).ToList();
        var udp = ports.Where(p => p.Protocol == PolicySemantics.Udp).GroupBy(p => (p.Vip, p.Port))
            .ToDictionary(g => g.Key, g => g.SelectMany(p => p.Backends).ToHashSet());
        var cleared = 0;
        if (udp.Count > 0 || before.Count > 0)
        {
            foreach (var family in AddressFamilies.Both)
            {
                cleared += Conntrack.DeleteTranslatedWhere(family, PolicySemantics.Udp,
                    (vip, port, to, toPort) => udp.TryGetValue((vip, port), out var backends)
                        ? !backends.Contains(new Backend(to, toPort))
                        : before.Contains(new ElementKey(ServiceRuleset.ServicePortKey(vip, PolicySemantics.Udp, port))));
            }
        }
        var valid = ports.Where(p => p.AffinitySeconds > 0)
            .SelectMany(p => p.Backends.Select(b => (Port: ServiceRuleset.ServicePortKey(p.Vip, p.Protocol, p.Port), Backend: ServiceRuleset.Backend(b.Address, b.Port))))
            .ToList();
        foreach (var family in FamilyLayout.Both)
        {
            cleared += DestroyAffinities(family, e => !valid.Exists(v => ServiceRuleset.AffinityMatches(e, v.Port, v.Backend)));
        }
        return cleared;
    }

    /// <summary>Removes the affinity entries of a family that <paramref name="stale"/> picks; returns how many.</summary>
    private int DestroyAffinities(FamilyLayout family, Func<NftElement, bool> stale)
    {
        var doomed = nft.ListElements(family.Affinity).Where(stale).ToList();
        if (doomed.Count == 0) return 0;
        var tx = nft.Begin();
        foreach (var entry in doomed) tx.DestroyElement(family.Affinity, entry);
        nft.Commit(tx);
        return doomed.Count;
    }

    /// <summary>Flows and affinities that still lead to an endpoint the service no longer sends to.</summary>
    private int ClearDeparted(ElementGroup old, ElementGroup current)
    {
        var cleared = 0;
        foreach (var port in old.Ports)
        {
            var now = current.Ports.FirstOrDefault(p => p.Vip.Equals(port.Vip) && p.Protocol == port.Protocol && p.Port == port.Port);
            var departed = port.Backends.Where(b => now is null || !now.Backends.Contains(b)).ToList();
            if (departed.Count == 0) continue;
            foreach (var backend in departed)
            {
                if (port.Protocol == PolicySemantics.Udp)
                {
                    cleared += Conntrack.DeleteTranslated(port.Protocol, port.Vip, port.Port, backend.Address, backend.Port);
                }
            }
            if (port.AffinitySeconds == 0) continue;
            var family = FamilyLayout.Of(port.Vip);
            var servicePort = ServiceRuleset.ServicePortKey(port.Vip, port.Protocol, port.Port);
            var values = departed.Select(b => ServiceRuleset.Backend(b.Address, b.Port)).ToList();
            cleared += DestroyAffinities(family, e => values.Any(v => ServiceRuleset.AffinityMatches(e, servicePort, v)));
        }
        return cleared;
    }
}
