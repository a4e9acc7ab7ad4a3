using System.Runtime.InteropServices;

namespace ControlPlane.Dataplane.Linux.Nftables;

/// <summary>
/// A chain of the table as the agent wants it: its hook (base chains) and its rules in order. A
/// data chain (created when data first needs it) may bring the sets its rules look up: they are
/// created before it and removed after it.
/// </summary>
public sealed record NftChainSpec(string Name, NftHook? Hook, IReadOnlyList<NftRule> Rules, IReadOnlyList<NftSetSpec>? Sets = null)
{
    public IReadOnlyList<NftSetSpec> OwnSets => Sets ?? [];
}

/// <summary>
/// The static part of a table: sets and chains that do not depend on the data. Its comment
/// carries a fingerprint of all of it, and of examples of the data chains (with their sets), so a
/// table written by another version is recognised.
/// </summary>
public sealed record NftSchema(IReadOnlyList<NftSetSpec> Sets, IReadOnlyList<NftChainSpec> Chains, IReadOnlyList<NftChainSpec>? DataExamples = null)
{
    public string Fingerprint { get; } = ComputeFingerprint(Sets, [.. Chains, .. DataExamples ?? []]);

    private static string ComputeFingerprint(IReadOnlyList<NftSetSpec> sets, IReadOnlyList<NftChainSpec> chains)
    {
        using var hash = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var set in sets.Concat(chains.SelectMany(c => c.OwnSets))) hash.AppendData(System.Text.Encoding.UTF8.GetBytes(set.ToString()));
        foreach (var chain in chains)
        {
            hash.AppendData(System.Text.Encoding.UTF8.GetBytes(chain.Name + chain.Hook));
            foreach (var rule in chain.Rules) hash.AppendData(rule.Expressions);
        }
        return Convert.ToHexString(hash.GetHashAndReset())[..16].ToLowerInvariant();
    }
}

/// <summary>An element's identity within its set: the key bytes (and range end), compared by value.</summary>
public readonly struct ElementKey : IEquatable<ElementKey>
{
    private readonly int _hash;

    public ElementKey(byte[] key, byte[]? keyEnd = null)
    {
        Key = key;
        KeyEnd = keyEnd;
        var h = new HashCode();
        h.AddBytes(key);
        if (keyEnd is not null) h.AddBytes(keyEnd);
        _hash = h.ToHashCode();
    }

    public byte[] Key { get; }

    public byte[]? KeyEnd { get; }

    public bool Equals(ElementKey other) =>
        _hash == other._hash && Key.AsSpan().SequenceEqual(other.Key) && (KeyEnd ?? []).AsSpan().SequenceEqual(other.KeyEnd ?? []);

    public override bool Equals(object? obj) => obj is ElementKey other && Equals(other);

    public override int GetHashCode() => _hash;

    public static ElementKey Of(in NftElement element) => new(element.Key, element.KeyEnd);
}

/// <summary>The elements of every data set of a table, as programmed (or as wanted).</summary>
public sealed class NftContents
{
    private readonly Dictionary<string, Dictionary<ElementKey, NftElement>> _sets = new(StringComparer.Ordinal);

    public Dictionary<ElementKey, NftElement> Set(string name)
    {
        ref var set = ref CollectionsMarshal.GetValueRefOrAddDefault(_sets, name, out _);
        return set ??= [];
    }

    public IEnumerable<string> SetNames => _sets.Keys;

    public int Count => _sets.Values.Sum(s => s.Count);

    public static bool SameValue(in NftElement a, in NftElement b) =>
        a.Flags == b.Flags && a.Verdict == b.Verdict && (a.Data ?? []).AsSpan().SequenceEqual(b.Data ?? []);
}

/// <summary>
/// Brings a table from whatever the kernel holds to the wanted schema and contents, reading the
/// kernel back first and changing only the difference, in one transaction:
/// <list type="bullet">
/// <item>no table, or one with another schema fingerprint: the table is (re)built whole — delete,
/// create, sets, chains, rules, elements — atomically;</item>
/// <item>the same schema: chains whose rules (by tag) differ are flushed and refilled, missing
/// chains and rules are added, elements are diffed one by one, and chains and sets the agent did
/// not ask for are removed.</item>
/// </list>
/// Kernel-managed sets (filled by the packet path) keep their elements.
/// </summary>
public static class NftTableSync
{
    public sealed record Result(bool Rebuilt, int ElementsAdded, int ElementsRemoved, int ChainsChanged);

    public static Result Converge(NftSocket nft, NftSchema schema, IReadOnlyList<NftChainSpec> dataChains, NftContents wanted, IReadOnlySet<string> kernelManaged)
    {
        var comment = "controlplane schema " + schema.Fingerprint;
        var (exists, actualComment) = nft.GetTable();
        var allChains = schema.Chains.Concat(dataChains).ToList();
        var dataSets = dataChains.SelectMany(c => c.OwnSets).ToList();
        var wantedSets = schema.Sets.Concat(dataSets).Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        var tx = nft.Begin();
        if (!exists || actualComment != comment)
        {
            if (exists) tx.DeleteTable();
            tx.AddTable(comment);
            foreach (var set in schema.Sets.Concat(dataSets)) tx.AddSet(set);
            foreach (var chain in allChains) tx.AddChain(chain.Name, chain.Hook);
            foreach (var chain in allChains)
            {
                foreach (var rule in chain.Rules) tx.AddRule(chain.Name, rule);
            }
            var added = 0;
            foreach (var name in wanted.SetNames)
            {
                foreach (var element in wanted.Set(name).Values)
                {
                    tx.AddElement(name, element);
                    added++;
                }
            }
            nft.Commit(tx);
            return new Result(true, added, 0, allChains.Count);
        }

        var actualChains = nft.ListChains().ToDictionary(c => c.Name, StringComparer.Ordinal);
        var actualRules = nft.ListRules().GroupBy(r => r.Chain).ToDictionary(g => g.Key, g => g.ToList(), StringComparer.Ordinal);
        var actualSets = nft.ListSets().ToDictionary(s => s.Name, StringComparer.Ordinal);
        if (schema.Sets.Any(s => !actualSets.ContainsKey(s.Name)) || schema.Chains.Any(c => !actualChains.TryGetValue(c.Name, out var a) || a.Hook != c.Hook))
        {
            // Same fingerprint but parts missing: someone edited our table; rebuild it whole.
            var rebuild = nft.Begin();
            rebuild.DeleteTable();
            nft.Commit(rebuild);
            return Converge(nft, schema, dataChains, wanted, kernelManaged);
        }

        var wantedChains = allChains.Select(c => c.Name).ToHashSet(StringComparer.Ordinal);
        var changedChains = 0;
        var newSets = dataSets.Where(s => !actualSets.ContainsKey(s.Name)).ToList();
        foreach (var set in newSets) tx.AddSet(set);
        foreach (var chain in allChains)
        {
            if (!actualChains.ContainsKey(chain.Name)) tx.AddChain(chain.Name, chain.Hook);
            var tags = actualRules.TryGetValue(chain.Name, out var rules) ? rules.Select(r => r.Tag).ToList() : [];
            if (tags.SequenceEqual(chain.Rules.Select(r => (string?)r.Tag))) continue;
            if (tags.Count > 0) tx.FlushChain(chain.Name);
            foreach (var rule in chain.Rules) tx.AddRule(chain.Name, rule);
            changedChains++;
        }
        // Chains we do not want: emptied first (their rules may use sets that go too), deleted after the elements that jump to them.
        var unknownChains = actualChains.Keys.Where(c => !wantedChains.Contains(c)).ToList();
        foreach (var chain in unknownChains) tx.FlushChain(chain);

        int addedCount = 0, removedCount = 0;
        foreach (var set in newSets)
        {
            foreach (var element in wanted.Set(set.Name).Values)
            {
                tx.AddElement(set.Name, element);
                addedCount++;
            }
        }
        foreach (var (name, spec) in actualSets)
        {
            if (!wantedSets.Contains(name) || kernelManaged.Contains(name)) continue;
            var want = wanted.Set(name);
            var have = nft.ListElements(name);
            var haveKeys = new HashSet<ElementKey>();
            foreach (var element in have)
            {
                var key = ElementKey.Of(element);
                haveKeys.Add(key);
                if (!want.TryGetValue(key, out var w) || !NftContents.SameValue(w, element))
                {
                    tx.DeleteElement(name, element);
                    removedCount++;
                    haveKeys.Remove(key);
                }
            }
            foreach (var (key, element) in want)
            {
                if (haveKeys.Contains(key)) continue;
                tx.AddElement(name, element);
                addedCount++;
            }
        }
        foreach (var chain in unknownChains) tx.DeleteChain(chain);
        foreach (var set in actualSets.Keys.Where(s => !wantedSets.Contains(s))) tx.DeleteSet(set);
        nft.Commit(tx);
        return new Result(false, addedCount, removedCount, changedChains + unknownChains.Count);
    }
}
