namespace ControlPlane.Contracts;

/// <summary>The RFC 1123 name rules Kubernetes applies to object names, for programs that check a name before the control plane would.</summary>
public static class DnsNames
{
    /// <summary>A DNS subdomain: dot-separated labels of lower-case letters, digits and '-', each starting and ending alphanumeric; at most 253 characters.</summary>
    public static bool IsSubdomain(string name) =>
        name.Length is > 0 and <= 253 && name.Split('.').All(label =>
            label.Length is > 0 and <= 63 && IsAlphanumeric(label[0]) && IsAlphanumeric(label[^1])
            && label.All(c => IsAlphanumeric(c) || c == '-'));

    private static bool IsAlphanumeric(char c) => char.IsAsciiLetterLower(c) || char.IsAsciiDigit(c);
}
