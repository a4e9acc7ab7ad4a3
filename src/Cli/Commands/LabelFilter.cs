using ControlPlane.Contracts.Naming;
using Google.Protobuf.Collections;

namespace ControlPlane.Cli.Commands;

/// <summary>A -l selector, applied on the client (the List call has no label filter).</summary>
internal sealed class LabelFilter
{
    private readonly List<Func<MapField<string, string>, bool>> _terms = [];

    public static LabelFilter Parse(string? text)
    {
        var filter = new LabelFilter();
        if (string.IsNullOrWhiteSpace(text)) return filter;
        foreach (var raw in text.Split(',', StringSplitOptions.TrimEntries))
        {
            if (raw.Length == 0) throw CliException.Usage($"-l '{text}' has an empty term");
            var notEqual = raw.IndexOf("!=", StringComparison.Ordinal);
            var equal = raw.IndexOf('=', StringComparison.Ordinal);
            if (notEqual > 0)
            {
                var (key, value) = Checked(raw[..notEqual], raw[(notEqual + 2)..]);
                filter._terms.Add(l => !l.TryGetValue(key, out var v) || v != value);
            }
            else if (equal > 0)
            {
                var (key, value) = Checked(raw[..equal], raw[(equal + 1)..].TrimStart('='));
                filter._terms.Add(l => l.TryGetValue(key, out var v) && v == value);
            }
            else if (raw[0] == '!' && raw.Length > 1)
            {
                var (key, _) = Checked(raw[1..], string.Empty);
                filter._terms.Add(l => !l.ContainsKey(key));
            }
            else if (equal < 0 && !raw.Contains(' ', StringComparison.Ordinal))
            {
                Checked(raw, string.Empty);
                filter._terms.Add(l => l.ContainsKey(raw));
            }
            else
            {
                throw CliException.Usage($"-l term '{raw}' is not key=value, key!=value, key or !key");
            }
        }
        return filter;
    }

    /// <summary>
    /// A key and value no label can have would match nothing, silently: refused instead, as
    /// Kubernetes refuses them (a 64-character container ID, say, where label values hold 63).
    /// </summary>
    private static (string Key, string Value) Checked(string key, string value)
    {
        if ((NameRules.LabelKey(key) ?? NameRules.LabelValue(value)) is { } error) throw CliException.Usage($"-l: {error}; no label can match it");
        return (key, value);
    }

    public bool Matches(MapField<string, string> labels) => _terms.All(t => t(labels));
}
