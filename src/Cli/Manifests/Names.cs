namespace ControlPlane.Cli.Manifests;

/// <summary>The naming rules the server applies (Kubernetes': DNS labels and subdomains, label keys and values, port names), checked before sending.</summary>
internal static class Names
{
    public static string? Label(string value)
    {
        if (value.Length == 0) return "must not be empty";
        if (value.Length > 63) return $"must be at most 63 characters (is {value.Length})";
        if (!value.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')) return $"{Quote(value)} must consist of lower-case letters, digits and '-'";
        if (value[0] == '-' || value[^1] == '-') return $"{Quote(value)} must start and end with a letter or digit";
        return null;
    }

    public static string? Subdomain(string value)
    {
        if (value.Length == 0) return "must not be empty";
        if (value.Length > 253) return $"must be at most 253 characters (is {value.Length})";
        return value.Split('.').Any(l => Label(l) is not null) ? $"{Quote(value)} must be dot-separated DNS labels (lower-case letters, digits, '-')" : null;
    }

    public static string? LabelKey(string key)
    {
        var slash = key.IndexOf('/', StringComparison.Ordinal);
        var name = key;
        if (slash >= 0)
        {
            if (Subdomain(key[..slash]) is { } error) return $"label key {Quote(key)}: prefix {error}";
            name = key[(slash + 1)..];
        }
        if (name.Length is 0 or > 63) return $"label key {Quote(key)}: name must be 1–63 characters";
        return QualifiedToken(name) ? null : $"label key {Quote(key)} must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
    }

    public static string? LabelValue(string value)
    {
        if (value.Length == 0) return null;
        if (value.Length > 63) return $"label value {Quote(value)} must be at most 63 characters";
        return QualifiedToken(value) ? null : $"label value {Quote(value)} must be letters, digits, '-', '_' or '.', starting and ending with a letter or digit";
    }

    public static string? PortName(string name)
    {
        if (name.Length is 0 or > 15) return $"port name {Quote(name)} must be 1–15 characters";
        if (!name.All(c => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c) || c == '-')) return $"port name {Quote(name)} must be lower-case letters, digits and '-'";
        if (!name.Any(char.IsAsciiLetter)) return $"port name {Quote(name)} must contain a letter";
        if (name[0] == '-' || name[^1] == '-' || name.Contains("--", StringComparison.Ordinal)) return $"port name {Quote(name)} must not start or end with '-' or contain '--'";
        return null;
    }

    private static bool QualifiedToken(string value) =>
        char.IsAsciiLetterOrDigit(value[0]) && char.IsAsciiLetterOrDigit(value[^1])
        && value.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    /// <summary>A value quoted for a message, cut to 64 characters (a manifest's value may be megabytes): as the server quotes it.</summary>
    public static string Quote(string value) => value.Length <= 64 ? $"'{value}'" : $"'{value[..64]}…' ({value.Length} characters)";
}
