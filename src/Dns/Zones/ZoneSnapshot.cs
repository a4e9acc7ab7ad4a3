using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// An immutable index of every authoritative zone the server answers for, replaced as a whole
/// when the data changes (readers never lock). Names are lower-case text keys looked up through a
/// span, so a query allocates nothing; so are zone apexes (a name's zone is found by trying its
/// suffixes, longest first). Every ancestor of a name, up to its apex, exists as a node (empty
/// non-terminals answer NODATA, not NXDOMAIN). Pod records, when on, are answered by a
/// <see cref="PodIndex"/> instead of stored names.
/// </summary>
public sealed class ZoneSnapshot
{
    private readonly Zone[] _zones;
    private readonly Zone? _root;
    private readonly Dictionary<string, Zone>.AlternateLookup<ReadOnlySpan<char>> _apexes;
    private readonly Dictionary<string, RecordSet[]> _names;
    private readonly Dictionary<string, RecordSet[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly PodIndex? _pods;

    private ZoneSnapshot(bool synced, Zone[] zones, Dictionary<string, RecordSet[]> names, PodIndex? pods)
    {
        Synced = synced;
        var apexes = new Dictionary<string, Zone>(StringComparer.Ordinal);
        foreach (var zone in zones) apexes.TryAdd(zone.Apex, zone);
        _zones = [.. apexes.Values];
        apexes.TryGetValue("", out _root);
        _apexes = apexes.GetAlternateLookup<ReadOnlySpan<char>>();
        _names = names;
        _lookup = names.GetAlternateLookup<ReadOnlySpan<char>>();
        _pods = pods;
    }

    /// <summary>Before the first sync: every query in these zones gets SERVFAIL.</summary>
    public static ZoneSnapshot Unsynced(IEnumerable<string> apexes) =>
        new(false, [.. apexes.Select(a => new Zone(a, 0, RecordData.Encode(DnsType.SOA, ". . 0 0 0 0 0")))], [], null);

    public bool Synced { get; }

    public IReadOnlyList<Zone> Zones => _zones;

    public PodIndex? Pods => _pods;

    public int NameCount => _names.Count;

    public int RecordCount => _names.Values.Sum(sets => sets.Sum(s => s.Count));

    /// <summary>Looks a name up; see <see cref="LookupAnswer"/> for what is filled in.</summary>
    public LookupResult Lookup(ReadOnlySpan<char> name, DnsType type, out LookupAnswer answer)
    {
        answer = default;
        answer.Zone = FindZone(name, out answer.ApexOffset);
        if (answer.Zone is null) return LookupResult.NotAuthoritative;
        if (_pods is not null && _pods.Covers(name)) return _pods.Lookup(name, type, ref answer);
        if (!_lookup.TryGetValue(name, out var sets)) return LookupResult.NameError;
        if (type == DnsType.ANY)
        {
            answer.All = sets;
            return sets.Length > 0 ? LookupResult.Success : LookupResult.NoData;
        }
        foreach (var set in sets)
        {
            if (set.Type == type) { answer.Set = set; return LookupResult.Success; }
        }
        foreach (var set in sets)
        {
            // An alias answers every type; the handler chases its target when it is ours.
            if (set.Type == DnsType.CNAME) { answer.Set = set; return LookupResult.Success; }
        }
        return LookupResult.NoData;
    }

    /// <summary>Whether the name lies in one of our zones (its answers are ours to give).</summary>
    public bool IsOurs(ReadOnlySpan<char> name) => FindZone(name, out _) is not null;

    /// <summary>The zone with the longest apex that is the name or one of its ancestors.</summary>
    private Zone? FindZone(ReadOnlySpan<char> name, out int apexOffset)
    {
        var offset = 0;
        while (true)
        {
            if (_apexes.TryGetValue(name[offset..], out var zone))
            {
                apexOffset = offset;
                return zone;
            }
            var dot = name[offset..].IndexOf('.');
            if (dot < 0) break;
            offset += dot + 1;
        }
        apexOffset = name.Length;
        return _root;
    }

    /// <summary>
    /// Builds a snapshot. Every zone needs an SOA record at its apex; records outside all zones
    /// are rejected. <paramref name="emptyNames"/> exist without records of their own (NODATA, not
    /// NXDOMAIN), as their ancestors do; those outside every zone are skipped.
    /// </summary>
    public static ZoneSnapshot Build(IEnumerable<ResourceRecord> records, PodIndex? pods = null, IEnumerable<string>? emptyNames = null)
    {
        var byName = new Dictionary<string, Dictionary<DnsType, List<(uint, byte[])>>>(StringComparer.Ordinal);
        var list = records.ToList();
        var zones = list.Where(r => r.Type == DnsType.SOA)
            .Select(r => new Zone(r.Owner, r.Ttl, RecordData.Encode(DnsType.SOA, r.Data)))
            .ToArray();
        var index = new ZoneSnapshot(true, zones, [], null);
        foreach (var record in list)
        {
            var owner = DnsName.Canonical(record.Owner);
            var zone = index.FindZone(owner, out _) ?? throw new FormatException($"{record.Owner} is in none of the zones");
            if (!byName.TryGetValue(owner, out var types)) byName[owner] = types = [];
            if (!types.TryGetValue(record.Type, out var rdatas)) types[record.Type] = rdatas = [];
            var rdata = RecordData.Encode(record.Type, record.Data);
            if (!rdatas.Exists(r => r.Item2.AsSpan().SequenceEqual(rdata))) rdatas.Add((record.Ttl, rdata));
            AddAncestors(owner, zone);
        }
        foreach (var empty in emptyNames ?? [])
        {
            var owner = DnsName.Canonical(empty);
            if (index.FindZone(owner, out _) is not { } zone) continue;
            byName.TryAdd(owner, []);
            AddAncestors(owner, zone);
        }
        var names = new Dictionary<string, RecordSet[]>(byName.Count, StringComparer.Ordinal);
        foreach (var (name, types) in byName)
        {
            names[name] = [.. types.Select(t => new RecordSet(t.Key, t.Value))];
        }
        foreach (var sets in names.Values)
        {
            foreach (var set in sets) set.AddTargetAddresses(target => names.GetValueOrDefault(target));
        }
        return new ZoneSnapshot(true, zones, names, pods);

        // Empty non-terminals between a name and its apex.
        void AddAncestors(string owner, Zone zone)
        {
            for (var name = owner; name.Length > zone.Apex.Length;)
            {
                var dot = name.IndexOf('.');
                if (dot < 0) break;
                name = name[(dot + 1)..];
                byName.TryAdd(name, []);
            }
        }
    }
}
