using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using ControlPlane.Cli.Resources;
using Google.Protobuf;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ControlPlane.Cli.Output;

/// <summary>
/// Objects as manifests (apiVersion, kind, metadata, spec, status) in JSON or YAML, with the proto
/// field names (snake_case), so that what <c>get -o yaml</c> prints can be applied again.
/// </summary>
internal static class ManifestText
{
    private static readonly JsonFormatter Formatter = new(JsonFormatter.Settings.Default.WithPreserveProtoFieldNames(true));
    private static readonly JsonSerializerOptions Indented = new() { WriteIndented = true };
    private static readonly JsonSerializerOptions Compact = new() { WriteIndented = false };

    public static JsonObject ToJson(ResourceKind kind, IMessage message)
    {
        var body = JsonNode.Parse(Formatter.Format(message))!.AsObject();
        var manifest = new JsonObject { ["apiVersion"] = ApiVersion, ["kind"] = kind.Name };
        foreach (var (key, value) in body) manifest[key] = value?.DeepClone();
        return manifest;
    }

    /// <summary>One answer of a call: as JSON or YAML when asked, else as <paramref name="table"/> writes it.</summary>
    public static void WriteAnswer(TextWriter output, OutputFormat format, IMessage answer, Action<TextWriter> table)
    {
        switch (format)
        {
            case OutputFormat.Json: output.WriteLine(Json(MessageJson(answer))); break;
            case OutputFormat.Yaml: output.Write(Yaml(MessageJson(answer))); break;
            default: table(output); break;
        }
    }

    /// <summary>A message (not an object, e.g. an explain answer) as JSON with proto field names.</summary>
    public static JsonObject MessageJson(IMessage message) => JsonNode.Parse(Formatter.Format(message))!.AsObject();

    public static JsonObject List(IEnumerable<JsonNode> items) =>
        new() { ["apiVersion"] = ApiVersion, ["kind"] = "List", ["items"] = new JsonArray([.. items]) };

    public static string Json(JsonNode node, bool indented = true) => node.ToJsonString(indented ? Indented : Compact);

    /// <summary>One YAML document (without the leading ---).</summary>
    public static string Yaml(JsonNode node)
    {
        var stream = new YamlStream(new YamlDocument(ToYaml(node)));
        using var writer = new StringWriter(CultureInfo.InvariantCulture);
        stream.Save(writer, assignAnchors: false);
        var text = writer.ToString().TrimEnd();
        // YamlStream ends every document with "..."; a manifest reads better without it.
        if (text.EndsWith("...", StringComparison.Ordinal)) text = text[..^3].TrimEnd();
        return text + "\n";
    }

    private static YamlNode ToYaml(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject map:
                var mapping = new YamlMappingNode();
                foreach (var (key, value) in map) mapping.Add(new YamlScalarNode(key), ToYaml(value));
                return mapping;
            case JsonArray array:
                var sequence = new YamlSequenceNode();
                foreach (var item in array) sequence.Add(ToYaml(item));
                return sequence;
            case JsonValue value when value.TryGetValue<string>(out var text):
                return new YamlScalarNode(text) { Style = NeedsQuotes(text) ? ScalarStyle.DoubleQuoted : ScalarStyle.Any };
            case JsonValue value:
                return new YamlScalarNode(value.ToJsonString()) { Style = ScalarStyle.Plain };
            default:
                return new YamlScalarNode("null") { Style = ScalarStyle.Plain };
        }
    }

    /// <summary>Strings a YAML reader would take for another type (numbers, booleans, null) keep their quotes.</summary>
    private static bool NeedsQuotes(string text) => ControlPlane.Cli.Manifests.PlainScalars.OtherType(text) is not null;

    private const string ApiVersion = ControlPlane.Cli.Manifests.ManifestReader.ApiVersion;
}
