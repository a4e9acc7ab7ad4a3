using ControlPlane.Contracts.Naming;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Validation;

/// <summary>
/// Kubernetes' naming rules (<see cref="NameRules"/>, shared with netctl) as the grains apply
/// them: a broken rule is INVALID_ARGUMENT naming the field.
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

    public static void RequireLabel(string field, string value)
    {
        if (NameRules.Label(value) is { } error) throw ControlPlaneException.Invalid(field, error);
    }

    public static void RequireSubdomain(string field, string value)
    {
        if (NameRules.Subdomain(value) is { } error) throw ControlPlaneException.Invalid(field, error);
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
            if ((NameRules.LabelKey(key) ?? NameRules.LabelValue(value)) is { } error) throw ControlPlaneException.Invalid(field, error);
        }
    }
}
