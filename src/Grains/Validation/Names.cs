using System.Buffers;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Validation;

/// <summary>
/// Kubernetes' naming rules: DNS-1123 labels and subdomains, label keys and values, port names.
/// Messages quote values through <see cref="ControlPlaneException.Quote"/>, so they stay bounded
/// whatever the caller sent.
/// </summary>
public static class Names
{
    /// <summary>
    /// Most bytes of keys and values together in one label map: 256 KiB, the total Kubernetes
    /// allows an object's annotations (it bounds each label's key and value, and the whole map only
    /// by its 1.5 MB object size). Every object and watch event carries its labels, and agents
    /// index them for selectors; a selector larger than this could never match anything.
    /// </summary>
    public const int MaxLabelBytes = 256 * 1024;

    private static readonly SearchValues<char> LowerAlnum = SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789");
    private static readonly SearchValues<char> LowerAlnumDash = SearchValues.Create("abcdefghijklmnopqrstuvwxyz0123456789-");
    private static readonly SearchValues<char> Alnum = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789");
    private static readonly SearchValues<char> LabelValueChars = SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.");

    /// <summary>A DNS-1123 label: 1–63 lower-case alphanumerics or '-', starting and ending alphanumeric.</summary>
    public static string? Dns1123LabelError(string value)
    {
        if (value.Length == 0) return "must not be empty";
        if (value.Length > 63) return $"must be at most 63 characters (is {value.Length})";
        if (value.AsSpan().IndexOfAnyExcept(LowerAlnumDash) >= 0) return $"{ControlPlaneException.Quote(value)} must consist of lower-case letters, digits and '-'";
        if (!LowerAlnum.Contains(value[0]) || !LowerAlnum.Contains(value[^1])) return $"{ControlPlaneException.Quote(value)} must start and end with a letter or digit";
        return null;
    }

    /// <summary>A DNS-1123 subdomain: dot-separated labels, at most 253 characters.</summary>
    public static string? Dns1123SubdomainError(string value)
    {
        if (value.Length == 0) return "must not be empty";
        if (value.Length > 253) return $"must be at most 253 characters (is {value.Length})";
        foreach (var label in value.Split('.'))
        {
            if (Dns1123LabelError(label) is not null) return $"{ControlPlaneException.Quote(value)} must be dot-separated DNS labels (lower-case letters, digits, '-')";
        }
        return null;
    }

    /// <summary>A label key: optional DNS-subdomain prefix and '/', then a name of 1–63 characters.</summary>
    public static string? LabelKeyError(string key)
    {
        var slash = key.IndexOf('/');
        var name = key;
        if (slash >= 0)
        {
            if (Dns1123SubdomainError(key[..slash]) is { } prefixError) return $"label key {ControlPlaneException.Quote(key)} prefix {prefixError}";
            name = key[(slash + 1)..];
        }
        if (name.Length is 0 or > 63) return $"label key {ControlPlaneException.Quote(key)} name must be 1–63 characters";
        if (!IsQualifiedToken(name)) return $"label key {ControlPlaneException.Quote(key)} must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric";
        return null;
    }

    public static string? LabelValueError(string value)
    {
        if (value.Length == 0) return null;
        if (value.Length > 63) return $"label value {ControlPlaneException.Quote(value)} must be at most 63 characters";
        return IsQualifiedToken(value) ? null : $"label value {ControlPlaneException.Quote(value)} must be alphanumerics, '-', '_' or '.', starting and ending alphanumeric";
    }

    /// <summary>An IANA service name as Kubernetes uses for named ports.</summary>
    public static string? PortNameError(string name)
    {
        if (name.Length is 0 or > 15) return $"port name {ControlPlaneException.Quote(name)} must be 1–15 characters";
        if (name.AsSpan().IndexOfAnyExcept(LowerAlnumDash) >= 0) return $"port name '{name}' must be lower-case letters, digits and '-'";
        if (!name.Any(char.IsAsciiLetter)) return $"port name '{name}' must contain a letter";
        if (name[0] == '-' || name[^1] == '-' || name.Contains("--", StringComparison.Ordinal)) return $"port name '{name}' must not start or end with '-' or contain '--'";
        return null;
    }

    public static void RequireLabel(string field, string value)
    {
        if (Dns1123LabelError(value) is { } error) throw ControlPlaneException.Invalid(field, error);
    }

    public static void RequireSubdomain(string field, string value)
    {
        if (Dns1123SubdomainError(value) is { } error) throw ControlPlaneException.Invalid(field, error);
    }

    /// <summary>Every key and value valid, and the map within <see cref="MaxLabelBytes"/>.</summary>
    public static void RequireLabels(string field, IDictionary<string, string> labels)
    {
        // Checked first and in one pass, so a huge map is refused before any per-label work.
        var size = 0L;
        foreach (var (key, value) in labels)
        {
            size += key.Length + value.Length;
        }
        if (size > MaxLabelBytes)
        {
            throw ControlPlaneException.Invalid(field, $"{labels.Count} labels of {size} bytes in all exceed the limit of {MaxLabelBytes} bytes");
        }
        foreach (var (key, value) in labels)
        {
            if ((LabelKeyError(key) ?? LabelValueError(value)) is { } error) throw ControlPlaneException.Invalid(field, error);
        }
    }

    private static bool IsQualifiedToken(string value) =>
        Alnum.Contains(value[0]) && Alnum.Contains(value[^1]) && value.AsSpan().IndexOfAnyExcept(LabelValueChars) < 0;
}
