using System.Buffers;

namespace ControlPlane.Contracts.Naming;

/// <summary>
/// Kubernetes' naming rules: DNS-1123 labels and subdomains, label keys and values, port names
/// (IANA service names). Each returns the reason a value breaks its rule, or null. The silo throws
/// the reason as INVALID_ARGUMENT naming its field, and netctl reports it before it sends anything,
/// so both say the same for the same input. Values are quoted through <see cref="Echo.Quote"/>, so a
/// reason stays bounded whatever the caller sent.
/// </summary>
public static class NameRules
{
    private static readonly SearchValues<char> LowerAlnum = SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789");
    private static readonly SearchValues<char> LowerAlnumDash = SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789-");
    private static readonly SearchValues<char> Alnum = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    private static readonly SearchValues<char> LabelValueChars = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    /// <summary>A DNS-1123 label: 1–63 lower-case alphanumerics or '-', starting and ending alphanumeric.</summary>
    public static string? Label(string value)
    {
        if (value.Length == 0) return "must not be empty";
        if (value.Length > 63) return $"must be at most 63 characters (is {value.Length})";
        if (value.AsSpan().IndexOfAnyExcept(LowerAlnumDash) >= 0) return $"{Echo.Quote(value)} must consist of lower-case letters, digits and '-'";
        if (!LowerAlnum.Contains(value[0]) || !LowerAlnum.Contains(value[^1])) return $"{Echo.Quote(value)} must start and end with a letter or digit";
        return null;
    }

    /// <summary>A DNS-1123 subdomain: dot-separated labels, at most 253 characters.</summary>
    public static string? Subdomain(string value)
    {
        if (value.Length == 0) return "must not be empty";
        if (value.Length > 253) return $"must be at most 253 characters (is {value.Length})";
        foreach (var label in value.Split('.'))
        {
            if (Label(label) is not { } error) continue;
            return label.Length == 0 ? $"{Echo.Quote(value)} must be dot-separated DNS labels: it starts or ends with '.' or holds '..'"
                : label.Length > 63 ? $"{Echo.Quote(value)} must be dot-separated DNS labels of at most 63 characters: one is {label.Length}"
                : $"{Echo.Quote(value)} must be dot-separated DNS labels: {error}";
        }
        return null;
    }

    /// <summary>A label key: an optional DNS-subdomain prefix and '/', then a name of 1–63 characters.</summary>
    public static string? LabelKey(string key)
    {
        var slash = key.IndexOf('/');
        var name = key;
        if (slash >= 0)
        {
            if (Subdomain(key[..slash]) is { } prefixError) return $"label key {Echo.Quote(key)} prefix {prefixError}";
            name = key[(slash + 1)..];
        }
        if (name.Length is 0 or > 63) return $"label key {Echo.Quote(key)} name must be 1–63 characters";
        if (!IsQualifiedToken(name)) return $"label key {Echo.Quote(key)} must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric";
        return null;
    }

    /// <summary>A label value: empty, or at most 63 alphanumerics, '-', '_' or '.', starting and ending alphanumeric.</summary>
    public static string? LabelValue(string value)
    {
        if (value.Length == 0) return null;
        if (value.Length > 63) return $"label value {Echo.Quote(value)} must be at most 63 characters";
        return IsQualifiedToken(value) ? null : $"label value {Echo.Quote(value)} must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric";
    }

    /// <summary>An IANA service name as Kubernetes uses for named ports.</summary>
    public static string? PortName(string name)
    {
        if (name.Length is 0 or > 15) return $"port name {Echo.Quote(name)} must be 1–15 characters";
        if (name.AsSpan().IndexOfAnyExcept(LowerAlnumDash) >= 0) return $"port name {Echo.Quote(name)} must be lower-case letters, digits and '-'";
        if (!name.Any(char.IsAsciiLetter)) return $"port name {Echo.Quote(name)} must contain a letter";
        if (name[0] == '-' || name[^1] == '-' || name.Contains("--", StringComparison.Ordinal)) return $"port name {Echo.Quote(name)} must not start or end with '-' or contain '--'";
        return null;
    }

    /// <summary>
    /// The name of one of a service's <paramref name="ports"/> ports: as in Kubernetes, a port may
    /// go unnamed only when it is the service's only one.
    /// </summary>
    public static string? ServicePortName(string name, int ports) => name.Length == 0
        ? ports > 1 ? "is required when a service has more than one port" : null
        : PortName(name);

    private static bool IsQualifiedToken(string value) =>
        Alnum.Contains(value[0]) && Alnum.Contains(value[^1]) && value.AsSpan().IndexOfAnyExcept(LabelValueChars) < 0;
}
