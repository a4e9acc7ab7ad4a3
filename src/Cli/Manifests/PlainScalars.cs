using System.Globalization;

namespace ControlPlane.Cli.Manifests;

/// <summary>
/// Unquoted YAML values that YAML readers take for another type than a string: null, booleans
/// (YAML 1.2's true and false, and YAML 1.1's yes, no, on and off, which Kubernetes' reader still
/// takes), numbers (decimal, with a fraction or an exponent, hexadecimal, octal). netctl writes
/// such strings quoted, and refuses them unquoted where a string belongs (a label value of
/// <c>true</c> or <c>1.0</c>), as Kubernetes does, rather than store the text.
/// </summary>
internal static class PlainScalars
{
    /// <summary>The type an unquoted <paramref name="text"/> reads as ("null", "boolean", "number"), or null for a string.</summary>
    public static string? OtherType(string? text)
    {
        if (text is null or "" or "~" or "null" or "Null" or "NULL") return "null";
        if (bool.TryParse(text, out _) || text.ToLowerInvariant() is "yes" or "no" or "on" or "off") return "boolean";
        var unsigned = text.TrimStart('-', '+');
        if (unsigned.Length > 2 && unsigned[0] == '0' && unsigned[1] is 'x' or 'o'
            && unsigned[2..].All(c => unsigned[1] == 'x' ? char.IsAsciiHexDigit(c) : c is >= '0' and <= '7')) return "number";
        if (text.Any(char.IsAsciiDigit) && double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out _)) return "number";
        return null;
    }
}
