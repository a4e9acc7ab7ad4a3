using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// An immutable index of every authoritative zone the server answers for, replaced as a whole
/// when the data changes (readers never lock). Names are lower-case text keys looked up through a
/// span, so a query allocates nothing. Every ancestor of a name, up to its apex, exists as a node
/// (empty non-terminals answer NODATA, not NXDOMAIN).
/// </summary>
public sealed class ZoneSnapshot
{
    private readonly Zone[] _zones;
    private readonly Dictionary<string, RecordSet[]> _names;
    private readonly Dictionary<string, RecordSet[]>.AlternateLookup<ReadOnlySpan<char>> _lookup;

    private ZoneSnapshot(bool synced, Zone[] zones, Dictionary<string, RecordSet[]> names)
    {
        Synced = synced;
        _zones = [.. zones.OrderByDescending(z => z.Apex.Length)];
        _names = names;
        _lookup = names.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>Before the first sync: every query in the cluster zones gets SERVFAIL.</summary>
    public static ZoneSnapshot Unsynced(IEnumerable<string> apexes) =>
        new(false, [.. apexes.Select(a => new Zone(a, 0, RecordData.Encode(DnsType.SOA, ". . 0 0 0 0 0")))], []);

    public bool Synced { get; }

    public IReadOnlyList<Zone> Zones => _zones;

    public int NameCount => _names.Count;

    public int RecordCount => _names.Values.Sum(sets => sets.Sum(s => s.Count));

    /// <summary>
    /// Looks a name up. <paramref name="apexOffset"/> is where the zone's apex starts inside
    /// the name's text (and so inside the question's wire form).
    /// </summary>
    public LookupResult Lookup(ReadOnlySpan<char> name, DnsType type, out Zone? zone, out int apexOffset, out RecordSet? answer, out RecordSet[]? all)
    {
        answer = null;
        all = null;
        zone = FindZone(name, out apexOffset);
        if (zone is null) return LookupResult.NotAuthoritative;
        if (!_lookup.TryGetValue(name, out var sets)) return LookupResult.NameError;
        if (type == DnsType.ANY)
        {
            all = sets;
            return sets.Length > 0 ? LookupResult.Success : LookupResult.NoData;
        }
        foreach (var set in sets)
        {
            if (set.Type == type) { answer = set; return LookupResult.Success; }
        }
        foreach (var set in sets)
        {
            // An alias answers every type (no chasing: ExternalName targets live outside the zone).
            if (set.Type == DnsType.CNAME) { answer = set; return LookupResult.Success; }
        }
        return LookupResult.NoData;
    }

    private Zone? FindZone(ReadOnlySpan<char> name, out int apexOffset)
    {
        foreach (var zone in _zones)
        {
            var apex = zone.Apex.AsSpan();
            if (apex.Length == 0)
            {
                apexOffset = name.Length;
                return zone;
            }
            if (name.Length == apex.Length && name.SequenceEqual(apex))
            {
                apexOffset = 0;
                return zone;
            }
            if (name.Length > apex.Length && name[^(apex.Length + 1)] == '.' && name.EndsWith(apex))
            {
                apexOffset = name.Length - apex.Length;
                return zone;
            }
        }
        apexOffset = 0;
        return null;
    }

    /// <summary>
    /// Builds a snapshot. Every zone needs an SOA record at its apex; records outside all zones
    /// are rejected.
    /// </summary>
    public static ZoneSnapshot Build(IEnumerable<ResourceRecord> records)
    {
        var byName = new Dictionary<string, Dictionary<DnsType, List<(uint, byte[])>>>(StringComparer.Ordinal);
        var list = records.ToList();
        var zones = list.Where(r => r.Type == DnsType.SOA)
            .Select(r => new Zone(r.Owner, r.Ttl, RecordData.Encode(DnsType.SOA, r.Data)))
            .ToArray();
        var index = new ZoneSnapshot(true, zones, []);
        foreach (var record in list)
        {
            var owner = DnsName.Canonical(record.Owner);
            var zone = index.FindZone(owner, out _) ?? throw new FormatException($"{record.Owner} is in none of the zones");
            if (!byName.TryGetValue(owner, out var types)) byName[owner] = types = [];
            if (!types.TryGetValue(record.Type, out var rdatas)) types[record.Type] = rdatas = [];
            var rdata = RecordData.Encode(record.Type, record.Data);
            if (!rdatas.Exists(r => r.Item2.AsSpan().SequenceEqual(rdata))) rdatas.Add((record.Ttl, rdata));
            // Empty non-terminals between the owner and its apex.
            for (var name = owner; name.Length > zone.Apex.Length;)
            {
                var dot = name.IndexOf('.');
                if (dot < 0) break;
                name = name[(dot + 1)..];
                if (!byName.ContainsKey(name)) byName[name] = [];
            }
        }
        var names = new Dictionary<string, RecordSet[]>(byName.Count, StringComparer.Ordinal);
        foreach (var (name, types) in byName)
        {
            names[name] = [.. types.Select(t => new RecordSet(t.Key, t.Value))];
        }
        return new ZoneSnapshot(true, zones, names);
    }
}
