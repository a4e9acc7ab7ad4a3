using System.Globalization;
using System.Text;
using ControlPlane.Dns.Wire;

namespace ControlPlane.Dns.Zones;

/// <summary>
/// Reads RFC 1035 master files: $ORIGIN, $TTL, comments, parentheses spanning lines, '@',
/// relative names, a blank owner repeating the previous one, optional TTL and class in either
/// order. Types: A, AAAA, NS, CNAME, PTR, SOA, SRV, TXT.
/// </summary>
public static class ZoneFile
{
    public static List<ResourceRecord> Parse(string text, string origin = "", uint defaultTtl = 3600)
    {
        var records = new List<ResourceRecord>();
        origin = Absolute(origin, ".");
        var ttl = defaultTtl;
        string? previousOwner = null;
        var lineNumber = 0;
        foreach (var (line, number) in LogicalLines(text))
        {
            lineNumber = number;
            try
            {
                var startsBlank = char.IsWhiteSpace(line[0]);
                var fields = RecordData.Tokenize(line);
                if (fields.Count == 0) continue;
                if (fields[0] == "$ORIGIN") { origin = Absolute(fields[1], "."); continue; }
                if (fields[0] == "$TTL") { ttl = uint.Parse(fields[1], CultureInfo.InvariantCulture); continue; }
                var i = 0;
                string owner;
                if (startsBlank)
                {
                    owner = previousOwner ?? throw new FormatException("the first record needs an owner");
                }
                else
                {
                    owner = Absolute(fields[i++], origin);
                }
                previousOwner = owner;
                var recordTtl = ttl;
                for (var k = 0; k < 2 && i < fields.Count; k++)
                {
                    if (uint.TryParse(fields[i], NumberStyles.None, CultureInfo.InvariantCulture, out var explicitTtl)) { recordTtl = explicitTtl; i++; }
                    else if (fields[i].Equals("IN", StringComparison.OrdinalIgnoreCase)) i++;
                }
                if (i >= fields.Count || !Enum.TryParse<DnsType>(fields[i], ignoreCase: true, out var type))
                    throw new FormatException($"unknown or missing record type '{(i < fields.Count ? fields[i] : "")}'");
                var data = RdataText(type, line, fields, i + 1, origin);
                RecordData.Encode(type, data); // reject bad data here, where the line number is known
                records.Add(new ResourceRecord(owner, type, recordTtl, data));
            }
            catch (Exception e) when (e is FormatException or OverflowException or IndexOutOfRangeException or ArgumentOutOfRangeException)
            {
                throw new FormatException($"zone file line {lineNumber}: {e.Message}", e);
            }
        }
        return records;
    }

    private static string RdataText(DnsType type, string line, List<string> fields, int start, string origin)
    {
        var data = fields.Skip(start).ToList();
        switch (type)
        {
            case DnsType.NS or DnsType.CNAME or DnsType.PTR:
                return Absolute(data[0], origin);
            case DnsType.SOA:
                data[0] = Absolute(data[0], origin);
                data[1] = Absolute(data[1], origin);
                return string.Join(' ', data);
            case DnsType.SRV:
                data[3] = Absolute(data[3], origin);
                return string.Join(' ', data);
            case DnsType.TXT:
                return string.Join(' ', data.Select(d => "\"" + d.Replace("\"", "\\\"", StringComparison.Ordinal) + "\""));
            default:
                return string.Join(' ', data);
        }
    }

    private static string Absolute(string name, string origin)
    {
        if (name == "@") return origin;
        if (name.EndsWith('.')) return name;
        return origin == "." ? name + "." : name + "." + origin;
    }

    /// <summary>Lines with comments removed and parenthesised continuations joined.</summary>
    private static IEnumerable<(string Line, int Number)> LogicalLines(string text)
    {
        var builder = new StringBuilder();
        var depth = 0;
        var startNumber = 0;
        var number = 0;
        foreach (var raw in text.Split('\n'))
        {
            number++;
            var line = StripComment(raw.TrimEnd('\r'));
            if (depth == 0)
            {
                builder.Clear();
                startNumber = number;
            }
            foreach (var c in line)
            {
                if (c == '(') { depth++; builder.Append(' '); }
                else if (c == ')') { depth--; builder.Append(' '); }
                else builder.Append(c);
            }
            builder.Append(' ');
            if (depth == 0 && builder.ToString().Trim().Length > 0)
            {
                yield return (builder.ToString().TrimEnd(), startNumber);
            }
        }
    }

    private static string StripComment(string line)
    {
        var quoted = false;
        for (var i = 0; i < line.Length; i++)
        {
            if (line[i] == '"') quoted = !quoted;
            else if (line[i] == ';' && !quoted) return line[..i];
        }
        return line;
    }
}
