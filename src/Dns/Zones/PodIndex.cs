using System.Net;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// Pod records: <c>&lt;address with dashes&gt;.&lt;namespace&gt;.pod.&lt;zone&gt;</c> answers A or
/// AAAA. Nothing is stored per name: the label is parsed at query time and the record is written
/// into the response (any spelling of an IPv6 address works). Verified, the address must be in
/// the namespace's set of endpoint addresses, and <c>pod.&lt;zone&gt;</c> and
/// <c>&lt;namespace&gt;.pod.&lt;zone&gt;</c> are empty non-terminals while addresses exist below
/// them; insecure, every namespace label and every valid address label exist (no sets are kept).
/// </summary>
public sealed class PodIndex
{
    private readonly Dictionary<string, HashSet<PodAddress>> _byNamespace;
    private readonly Dictionary<string, HashSet<PodAddress>>.AlternateLookup<ReadOnlySpan<char>> _lookup;
    private readonly uint _ttl;
    private readonly bool _insecure;

    /// <param name="zone">The cluster domain; records live under pod.&lt;zone&gt;.</param>
    /// <param name="addresses">Every endpoint address with its namespace (unparsable ones are skipped); none when insecure.</param>
    public PodIndex(string zone, uint ttl, IEnumerable<(string Namespace, string Ip)> addresses, PodRecordMode mode = PodRecordMode.Verified)
        : this(zone, ttl, Parsed(addresses), mode)
    {
    }

    /// <param name="zone">The cluster domain; records live under pod.&lt;zone&gt;.</param>
    /// <param name="addresses">Every endpoint address with its namespace; none when insecure.</param>
    public PodIndex(string zone, uint ttl, IEnumerable<(string Namespace, PodAddress Address)> addresses, PodRecordMode mode = PodRecordMode.Verified)
    {
        if (mode == PodRecordMode.Disabled) throw new ArgumentException("disabled pod records have no index", nameof(mode));
        Suffix = "pod." + DnsName.Canonical(zone);
        _ttl = ttl;
        _insecure = mode == PodRecordMode.Insecure;
        _byNamespace = new Dictionary<string, HashSet<PodAddress>>(StringComparer.Ordinal);
        // A large cluster has tens of thousands of addresses, mostly in runs of one namespace: a
        // namespace looked up only when it differs from the last one's (the same string object).
        string? last = null;
        HashSet<PodAddress>? set = null;
        foreach (var (ns, address) in addresses)
        {
            if (!ReferenceEquals(ns, last))
            {
                if (!_byNamespace.TryGetValue(ns, out set)) _byNamespace[ns] = set = new HashSet<PodAddress>();
                last = ns;
            }
            set!.Add(address);
        }
        _lookup = _byNamespace.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    private static IEnumerable<(string, PodAddress)> Parsed(IEnumerable<(string Namespace, string Ip)> addresses)
    {
        foreach (var (ns, ip) in addresses)
        {
            if (PodAddress.TryParse(ip, out var address)) yield return (ns, address);
        }
    }

    /// <summary>True when <paramref name="other"/> answers the same names (same mode, zone, TTL and addresses).</summary>
    public bool SameAs(PodIndex? other)
    {
        if (other is null || other._insecure != _insecure || other._ttl != _ttl || other.Suffix != Suffix || other._byNamespace.Count != _byNamespace.Count) return false;
        foreach (var (ns, set) in _byNamespace)
        {
            if (!other._byNamespace.TryGetValue(ns, out var theirs) || !theirs.SetEquals(set)) return false;
        }
        return true;
    }

    /// <summary>"pod.&lt;zone&gt;": the names this index answers end with it.</summary>
    public string Suffix { get; }

    public int AddressCount => _byNamespace.Values.Sum(s => s.Count);

    /// <summary>True when <paramref name="name"/> is <see cref="Suffix"/> or lies below it.</summary>
    public bool Covers(ReadOnlySpan<char> name) =>
        name.EndsWith(Suffix) && (name.Length == Suffix.Length || name[^(Suffix.Length + 1)] == '.');

    /// <summary>Answers a name that <see cref="Covers"/> accepts.</summary>
    public LookupResult Lookup(ReadOnlySpan<char> name, DnsType type, ref LookupAnswer answer)
    {
        if (name.Length == Suffix.Length) return _insecure || _byNamespace.Count > 0 ? LookupResult.NoData : LookupResult.NameError;
        var relative = name[..^(Suffix.Length + 1)];
        var dot = relative.LastIndexOf('.');
        HashSet<PodAddress>? addresses = null;
        if (!_insecure && !_lookup.TryGetValue(relative[(dot + 1)..], out addresses)) return LookupResult.NameError;
        if (dot < 0) return LookupResult.NoData;
        var label = relative[..dot];
        if (label.Contains('.') || !PodAddress.TryParseLabel(label, out var address) || (addresses is not null && !addresses.Contains(address)))
        {
            return LookupResult.NameError;
        }
        if (type != DnsType.ANY && type != address.Type) return LookupResult.NoData;
        answer.Address = address;
        answer.AddressTtl = _ttl;
        return LookupResult.Success;
    }
}
