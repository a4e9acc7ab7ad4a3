using System.Collections;
using System.Globalization;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ControlPlane.Cli.Manifests;

/// <summary>
/// Builds a protobuf message from a YAML (or JSON) node, driven by the message's descriptor, and
/// collects every problem instead of stopping at the first.
/// </summary>
/// <remarks>
/// Field names: the proto name (snake_case, as in the .proto files and the server's messages) or
/// the JSON name (lowerCamelCase) in any letter case, so <c>podSelector</c>, <c>ipBlock</c> and
/// <c>clusterIPs</c> all work. Kubernetes spellings accepted on top: <c>from</c> (ingress) and
/// <c>to</c> (egress) for a rule's <c>peers</c>; <c>port: 80|http</c> in a policy port;
/// <c>targetPort: 8080|http</c> in a service port. Enum values by proto name or the Kubernetes
/// spelling, in any letter case, with or without underscores (<c>ClusterIP</c>, <c>CLUSTER_IP</c>,
/// <c>ClientIP</c>, <c>None</c>). Server-owned metadata (<c>uid</c>, <c>create_time</c>) is ignored;
/// <c>etag</c> is kept and makes the update conditional on it. A null value leaves a field unset.
/// </remarks>
internal sealed class MessageReader
{
    private static readonly HashSet<string> IgnoredMetadata = new(StringComparer.OrdinalIgnoreCase) { "uid", "create_time", "createTime", "creationTimestamp" };

    public List<(string Typed, int Line, string Message)> Problems { get; } = [];

    public Dictionary<string, FieldLocation> Locations { get; } = new(StringComparer.Ordinal);

    public static int LineOf(YamlNode node) => (int)node.Start.Line;

    public void ReadInto(IMessage message, YamlNode node, string protoPath, string typedPath)
    {
        if (node is not YamlMappingNode mapping)
        {
            if (!IsNull(node)) Problem(typedPath, node, "must be a mapping of fields");
            return;
        }
        var descriptor = message.Descriptor;
        foreach (var (keyNode, valueNode) in mapping.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value ?? string.Empty;
            var typed = Join(typedPath, key);
            if (descriptor.FullName == "controlplane.v1.ObjectMeta" && IgnoredMetadata.Contains(key)) continue;
            if (Special(message, key, valueNode, protoPath, typed)) continue;
            var field = FindField(descriptor, key);
            if (field is null)
            {
                Problem(typed, keyNode, $"unknown field (the fields of {descriptor.Name} are {string.Join(", ", descriptor.Fields.InDeclarationOrder().Select(f => f.Name))})");
                continue;
            }
            ReadField(message, field, valueNode, Join(protoPath, field.Name), typed);
        }
    }

    private void ReadField(IMessage message, FieldDescriptor field, YamlNode node, string protoPath, string typed)
    {
        Locations[protoPath] = new FieldLocation(typed, LineOf(node));
        if (IsNull(node)) return;
        if (field.IsMap)
        {
            if (node is not YamlMappingNode map)
            {
                Problem(typed, node, "must be a mapping of names to values");
                return;
            }
            var dictionary = (IDictionary)field.Accessor.GetValue(message);
            foreach (var (k, v) in map.Children)
            {
                var key = (k as YamlScalarNode)?.Value ?? string.Empty;
                if (AsString(v, out var why) is not { } value)
                {
                    Problem(typed + "." + key, v, why);
                    continue;
                }
                dictionary[key] = value;
            }
            return;
        }
        if (field.IsRepeated)
        {
            if (node is not YamlSequenceNode sequence)
            {
                Problem(typed, node, "must be a list");
                return;
            }
            var list = (IList)field.Accessor.GetValue(message);
            for (var i = 0; i < sequence.Children.Count; i++)
            {
                var item = sequence.Children[i];
                var itemPath = $"{protoPath}[{i}]";
                var itemTyped = $"{typed}[{i}]";
                Locations[itemPath] = new FieldLocation(itemTyped, LineOf(item));
                if (Convert(field, item, itemPath, itemTyped) is { } value) list.Add(value);
            }
            return;
        }
        if (field.RealContainingOneof is { } oneof && oneof.Accessor.GetCaseFieldDescriptor(message) is { } taken && taken != field)
        {
            Problem(typed, node, $"cannot be set together with {taken.Name} (they are alternatives)");
            return;
        }
        if (Convert(field, node, protoPath, typed) is { } converted) field.Accessor.SetValue(message, converted);
    }

    private object? Convert(FieldDescriptor field, YamlNode node, string protoPath, string typed)
    {
        switch (field.FieldType)
        {
            case FieldType.Message:
                var child = (IMessage)Activator.CreateInstance(field.MessageType.ClrType)!;
                ReadInto(child, node, protoPath, typed);
                return child;
            case FieldType.String:
                if (AsString(node, out var notText) is { } text) return text;
                Problem(typed, node, notText);
                return null;
            case FieldType.Bool:
                if (node is YamlScalarNode { Style: ScalarStyle.Plain, Value: { } b } && bool.TryParse(b, out var flag)) return flag;
                Problem(typed, node, $"must be true or false (is {Show(node)})");
                return null;
            case FieldType.UInt32:
                if (node is YamlScalarNode { Style: ScalarStyle.Plain, Value: { } u } && uint.TryParse(u, NumberStyles.None, CultureInfo.InvariantCulture, out var number)) return number;
                // The field's own range is the server's to say; only a number past any field's range is refused for that here.
                Problem(typed, node, IsWholeNumber(node)
                    ? $"must be a whole number from 0 to {uint.MaxValue} (is {Show(node)})"
                    : $"must be a whole number (is {Show(node)})");
                return null;
            case FieldType.Int32:
                if (node is YamlScalarNode { Style: ScalarStyle.Plain, Value: { } s } && int.TryParse(s, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var signed)) return signed;
                Problem(typed, node, $"must be a whole number (is {Show(node)})");
                return null;
            case FieldType.Enum:
                if (node is YamlScalarNode { Value: { } name } && FindEnumValue(field.EnumType, name) is { } value) return Enum.ToObject(field.EnumType.ClrType, value.Number);
                Problem(typed, node, $"must be one of {string.Join(", ", field.EnumType.Values.Where(v => v.Number != 0).Select(v => v.Name))} (is {Show(node)})");
                return null;
            default:
                Problem(typed, node, $"has a type netctl cannot read ({field.FieldType})");
                return null;
        }
    }

    /// <summary>The Kubernetes spellings that have no field of their own.</summary>
    private bool Special(IMessage message, string key, YamlNode value, string protoPath, string typed)
    {
        var descriptor = message.Descriptor;
        switch (descriptor.FullName)
        {
            case "controlplane.v1.NetworkPolicyRule" when key == "from" && protoPath.StartsWith("spec.ingress[", StringComparison.Ordinal):
            case "controlplane.v1.NetworkPolicyRule" when key == "to" && protoPath.StartsWith("spec.egress[", StringComparison.Ordinal):
                ReadField(message, descriptor.FindFieldByName("peers"), value, Join(protoPath, "peers"), typed);
                return true;
            case "controlplane.v1.NetworkPolicyPort" when key == "port":
                ReadField(message, descriptor.FindFieldByName(IsWholeNumber(value) ? "number" : "name"), value,
                    Join(protoPath, IsWholeNumber(value) ? "number" : "name"), typed);
                return true;
            case "controlplane.v1.ServicePort" when key.Equals("targetPort", StringComparison.OrdinalIgnoreCase) || key == "target_port":
                var target = IsWholeNumber(value) ? "target_port_number" : "target_port_name";
                ReadField(message, descriptor.FindFieldByName(target), value, Join(protoPath, target), typed);
                return true;
            default:
                return false;
        }
    }

    private static FieldDescriptor? FindField(MessageDescriptor descriptor, string key) =>
        descriptor.FindFieldByName(key)
        ?? descriptor.Fields.InDeclarationOrder().FirstOrDefault(f => string.Equals(f.JsonName, key, StringComparison.OrdinalIgnoreCase));

    /// <summary>Proto name, Kubernetes spelling (ClusterIP), any letter case, with or without the enum's prefix.</summary>
    private static EnumValueDescriptor? FindEnumValue(EnumDescriptor type, string text)
    {
        var wanted = Squash(text);
        var prefix = Squash(string.Concat(type.Name.Select((c, i) => i > 0 && char.IsUpper(c) ? "_" + c : c.ToString())));
        foreach (var value in type.Values)
        {
            if (value.Number == 0 && !value.Name.EndsWith("_NONE", StringComparison.Ordinal)) continue;
            var name = Squash(value.Name);
            if (name == wanted || (name.StartsWith(prefix, StringComparison.Ordinal) && name[prefix.Length..] == wanted)) return value;
        }
        return null;
    }

    private static string Squash(string text) => text.Replace("_", string.Empty, StringComparison.Ordinal).ToUpperInvariant();

    // A plain scalar of digits, or a minus and digits (a number out of a field's range, not a name).
    private static bool IsWholeNumber(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: { } v } && Digits(v.StartsWith('-') ? v[1..] : v);

    private static bool Digits(string text) => text.Length > 0 && text.All(char.IsAsciiDigit);

    /// <summary>
    /// The string <paramref name="node"/> spells; null, with <paramref name="why"/>, for a list, a
    /// mapping, or an unquoted value YAML reads as another type (a boolean, a number, null).
    /// </summary>
    private static string? AsString(YamlNode node, out string why)
    {
        why = "must be a string";
        if (node is not YamlScalarNode scalar) return null;
        if (scalar.Style == ScalarStyle.Plain && PlainScalars.OtherType(scalar.Value) is { } type)
        {
            why = $"must be a string (is {Show(node)}, which YAML reads as {(type == "null" ? "null" : "a " + type)}: quote it)";
            return null;
        }
        return scalar.Value;
    }

    public static bool IsNull(YamlNode node) =>
        node is YamlScalarNode { Style: ScalarStyle.Plain, Value: null or "" or "~" or "null" or "Null" or "NULL" };

    private static string Show(YamlNode node) => node switch
    {
        YamlScalarNode { Value: { } v } => $"'{(v.Length > 40 ? v[..40] + "…" : v)}'",
        YamlSequenceNode => "a list",
        YamlMappingNode => "a mapping",
        _ => "empty",
    };

    private static string Join(string path, string key) => path.Length == 0 ? key : path + "." + key;

    private void Problem(string typed, YamlNode node, string message) => Problems.Add((typed, LineOf(node), message));
}
