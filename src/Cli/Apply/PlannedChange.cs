using ControlPlane.Cli.Manifests;
using ControlPlane.Cli.Resources;
using Google.Protobuf;

namespace ControlPlane.Cli.Apply;

/// <summary>What apply will do with one document: create it, or update the stored object (<see cref="Existing"/>) under an etag.</summary>
internal sealed record PlannedChange(ManifestDocument Document, IMessage? Existing)
{
    public bool IsCreate => Existing is null;

    /// <summary>
    /// Whether the update would leave the stored object as it is (what a server dry run reports
    /// as "unchanged"): the labels are the stored ones, and every spec field the manifest sets
    /// holds the stored value. A field it leaves empty or zero counts as the default the server
    /// filled in (block lengths, IP families, the service type); a boolean is always compared, and
    /// so is an enum whose zero is a value of its own rather than "unspecified" (session affinity
    /// NONE: ClientIP back to None is a change).
    /// </summary>
    public bool WouldChange => Existing is null
        || !ResourceKind.MetaOf(Existing).Labels.Equals(LabelsAfterUpdate())
        || Document.Message.Descriptor.FindFieldByName("spec") is { } spec && !SetFieldsMatch((IMessage?)spec.Accessor.GetValue(Document.Message), (IMessage?)spec.Accessor.GetValue(Existing));

    /// <summary>The manifest's labels, and those the server sets itself (a namespace's name label).</summary>
    private Google.Protobuf.Collections.MapField<string, string> LabelsAfterUpdate()
    {
        var labels = Document.Meta.Labels.Clone();
        if (Document.Message is Contracts.V1.Namespace) labels["kubernetes.io/metadata.name"] = Document.Meta.Name;
        return labels;
    }

    private static bool SetFieldsMatch(IMessage? wanted, IMessage? stored)
    {
        if (wanted is null) return true;
        foreach (var field in wanted.Descriptor.Fields.InDeclarationOrder())
        {
            var value = field.Accessor.GetValue(wanted);
            if (IsUnset(value) && !IsChoiceOfZero(field)) continue;
            var current = stored is null ? null : field.Accessor.GetValue(stored);
            if (field.FieldType == Google.Protobuf.Reflection.FieldType.Message && !field.IsRepeated && !field.IsMap)
            {
                if (!SetFieldsMatch((IMessage)value, (IMessage?)current)) return false;
            }
            else if (!Equals(value, current))
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>A single enum field whose zero names a value (SESSION_AFFINITY_NONE), not the absence of one (..._UNSPECIFIED).</summary>
    private static bool IsChoiceOfZero(Google.Protobuf.Reflection.FieldDescriptor field) =>
        field.FieldType == Google.Protobuf.Reflection.FieldType.Enum && !field.IsRepeated
        && field.EnumType.FindValueByNumber(0) is { } zero && !zero.Name.EndsWith("_UNSPECIFIED", StringComparison.Ordinal);

    private static bool IsUnset(object? value) => value switch
    {
        null => true,
        System.Collections.ICollection collection => collection.Count == 0,
        string text => text.Length == 0,
        ByteString bytes => bytes.IsEmpty,
        bool => false, // false is a choice, never a default the server fills in
        Enum number => Convert.ToInt64(number, System.Globalization.CultureInfo.InvariantCulture) == 0,
        IMessage => false,
        _ => Convert.ToDecimal(value, System.Globalization.CultureInfo.InvariantCulture) == 0m,
    };

    /// <summary>The etag the update is conditional on: the manifest's own, else the one just read.</summary>
    public string Etag => Document.Meta.Etag.Length > 0 ? Document.Meta.Etag : Existing is null ? string.Empty : Resources.ResourceKind.MetaOf(Existing).Etag;
}
