using System.ComponentModel;
using System.Diagnostics.CodeAnalysis;
using System.Globalization;
using System.Reflection;
using Microsoft.Extensions.Configuration;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// Reads a settings section into its options type, refusing a value that does not convert before
/// .NET's binder sees it. The binder's own refusal names .NET types
/// (<c>to type 'System.Int32'</c>) and accepts an enum's undefined numbers; this says what the
/// setting takes instead: the names of an enum, the range of a whole number, true or false. A
/// refusal is an <see cref="InvalidConfigurationException"/>, so the program exits 2.
/// </summary>
public static class Settings
{
    /// <summary>Why the programs that read settings are not trimmed (the CNI plugin, which is, reads none).</summary>
    private const string Reflection = "reads options types and converts values by reflection, as .NET's configuration binder does";

    /// <summary>The options in <paramref name="section"/>; the type's defaults when it is absent.</summary>
    [RequiresUnreferencedCode(Reflection)]
    [RequiresDynamicCode(Reflection)]
    /// <param name="everyKey">
    /// The section holds nothing but <typeparamref name="T"/>'s settings: a key that is none of them
    /// (a typo such as Silo:Prot) is refused naming the setting it most resembles, rather than
    /// ignored while the default applies.
    /// </param>
    public static T Read<T>(this IConfiguration section, bool everyKey = false) where T : new()
    {
        var properties = SettableProperties(typeof(T)).ToList();
        var errors = properties.Select(p => Problem(section, p.Name, p.PropertyType)).OfType<string>().ToList();
        if (everyKey) errors.AddRange(UnknownKeys(section, [.. properties.Select(p => p.Name)]));
        if (errors.Count > 0) throw new InvalidConfigurationException("Invalid configuration:\n  " + string.Join("\n  ", errors));
        return section.Get<T>() ?? new T();
    }

    /// <summary>The settings of <typeparamref name="T"/>, by name: for a section several options types share.</summary>
    public static IEnumerable<string> SettingNames<[DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] T>() =>
        SettableProperties(typeof(T)).Select(p => p.Name);

    /// <summary>The settings an options type has: its public properties that can be set.</summary>
    private static IEnumerable<PropertyInfo> SettableProperties([DynamicallyAccessedMembers(DynamicallyAccessedMemberTypes.PublicProperties)] Type type) =>
        type.GetProperties(BindingFlags.Public | BindingFlags.Instance).Where(p => p.CanWrite);

    /// <summary>
    /// Refuses a key of <paramref name="section"/> that is none of <paramref name="known"/>, as
    /// <see cref="Read{T}"/> with everyKey does for a section of one options type.
    /// </summary>
    public static void RequireKnownKeys(this IConfiguration section, IReadOnlyList<string> known)
    {
        if (UnknownKeys(section, known) is { Count: > 0 } errors) throw new InvalidConfigurationException("Invalid configuration:\n  " + string.Join("\n  ", errors));
    }

    private static List<string> UnknownKeys(IConfiguration section, IReadOnlyList<string> known)
    {
        var errors = new List<string>();
        if (section is not IConfigurationSection { Path: var path }) return errors;
        foreach (var child in section.GetChildren().Where(c => !known.Contains(c.Key, StringComparer.OrdinalIgnoreCase)))
        {
            var closest = known.MinBy(name => Distance(name.ToLowerInvariant(), child.Key.ToLowerInvariant()))!;
            errors.Add($"{child.Path}: {path} has no setting '{child.Key}' (did you mean {path}:{closest}?)");
        }
        return errors;
    }

    /// <summary>Edits (insert, delete, replace, swap two neighbours) that make <paramref name="a"/> <paramref name="b"/>.</summary>
    private static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (var i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (var j = 0; j <= b.Length; j++) d[0, j] = j;
        for (var i = 1; i <= a.Length; i++)
        {
            for (var j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        }
        return d[a.Length, b.Length];
    }

    /// <summary>One setting, <paramref name="fallback"/> when it is absent; refused as <see cref="Read{T}"/> refuses.</summary>
    [RequiresUnreferencedCode(Reflection)]
    [RequiresDynamicCode(Reflection)]
    public static T Value<T>(this IConfiguration configuration, string key, T fallback)
    {
        if (Problem(configuration, key, typeof(T)) is { } problem) throw new InvalidConfigurationException("Invalid configuration:\n  " + problem);
        return configuration.GetValue(key, fallback)!;
    }

    /// <summary>"Path='value': what it takes" for a scalar setting whose value does not convert to <paramref name="type"/>; null otherwise.</summary>
    [RequiresUnreferencedCode(Reflection)]
    [RequiresDynamicCode(Reflection)]
    private static string? Problem(IConfiguration configuration, string key, Type type)
    {
        if (configuration[key] is not { } value) return null;
        type = Nullable.GetUnderlyingType(type) ?? type;
        if (!IsScalar(type) || Refusal(type, value) is not { } reason) return null;
        var path = configuration is IConfigurationSection section ? $"{section.Path}:{key}" : key;
        return $"{path}='{value}': {reason}";
    }

    private static bool IsScalar(Type type) =>
        type.IsEnum || type.IsPrimitive || type == typeof(decimal) || type == typeof(TimeSpan);

    /// <summary>Why <paramref name="value"/> is no <paramref name="type"/>; null when it converts.</summary>
    [RequiresUnreferencedCode(Reflection)]
    [RequiresDynamicCode(Reflection)]
    private static string? Refusal(Type type, string value)
    {
        if (type.IsEnum)
        {
            // Names only: the binder would take any number, defined or not.
            return Enum.TryParse(type, value.Trim(), ignoreCase: true, out var parsed) && !IsNumber(value) && Enum.IsDefined(type, parsed!)
                ? null
                : $"expected one of {string.Join(", ", Enum.GetNames(type))}";
        }
        try
        {
            TypeDescriptor.GetConverter(type).ConvertFromInvariantString(value);
            return null;
        }
        catch (Exception e) when (e is FormatException or ArgumentException or NotSupportedException or OverflowException)
        {
            return type switch
            {
                _ when type == typeof(bool) => "expected true or false",
                _ when type == typeof(TimeSpan) => StrictDurationConverter.IsBareNumber(value)
                    ? StrictDurationConverter.BareNumber
                    : "expected a duration, hh:mm:ss or d.hh:mm:ss (30 seconds: 00:00:30)",
                _ when type == typeof(double) || type == typeof(float) || type == typeof(decimal) => "expected a number",
                // The type's range only for a number outside it: a setting's own range (a port's) is checked with its meaning.
                _ when !IsNumber(value) && type.GetField("MinValue") is not null => "expected a whole number",
                _ when type.GetField("MinValue")?.GetValue(null) is { } min && type.GetField("MaxValue")?.GetValue(null) is { } max
                    => $"expected a whole number from {min} to {max}",
                _ => $"expected a {type.Name}",
            };
        }
    }

    private static bool IsNumber(string value) => value.Trim() is { Length: > 0 } t && (char.IsAsciiDigit(t[0]) || t[0] is '-' or '+');
}
