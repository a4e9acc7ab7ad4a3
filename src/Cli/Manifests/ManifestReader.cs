using ControlPlane.Cli.Resources;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ControlPlane.Cli.Manifests;

/// <summary>
/// Reads manifests: files, directories (their *.yaml, *.yml and *.json files, sorted by name; with
/// recursion into subdirectories when asked) and "-" for standard input. A file holds one or more
/// YAML documents (separated by ---) or JSON values; a document may be one object, a list of
/// objects, or a <c>kind: List</c> with <c>items</c>. Empty documents are skipped. Every object's
/// apiVersion is controlplane/v1, or the one Kubernetes gives its kind where netctl knows one
/// (<see cref="ResourceKind.KubernetesApiVersion"/>: multicluster.x-k8s.io/v1alpha1 for a ServiceExport).
/// </summary>
internal static class ManifestReader
{
    public const string ApiVersion = "controlplane/v1";
    private static readonly string[] Extensions = [".yaml", ".yml", ".json"];

    public sealed record Result(IReadOnlyList<ManifestDocument> Documents, IReadOnlyList<ManifestProblem> Problems);

    public static Result Read(IEnumerable<string> paths, bool recursive, TextReader stdin)
    {
        var documents = new List<ManifestDocument>();
        var problems = new List<ManifestProblem>();
        foreach (var path in paths)
        {
            if (path == "-")
            {
                ReadText("<stdin>", stdin, documents, problems);
            }
            else if (Directory.Exists(path))
            {
                var files = Directory.EnumerateFiles(path, "*", recursive ? SearchOption.AllDirectories : SearchOption.TopDirectoryOnly)
                    .Where(f => Extensions.Contains(Path.GetExtension(f), StringComparer.OrdinalIgnoreCase))
                    .Order(StringComparer.Ordinal)
                    .ToList();
                if (files.Count == 0) problems.Add(new ManifestProblem(path, "directory", null, 0, "holds no .yaml, .yml or .json file"));
                foreach (var file in files) ReadFile(file, documents, problems);
            }
            else if (File.Exists(path))
            {
                ReadFile(path, documents, problems);
            }
            else
            {
                problems.Add(new ManifestProblem(path, "file", null, 0, "does not exist"));
            }
        }
        return new Result(documents, problems);
    }

    private static void ReadFile(string path, List<ManifestDocument> documents, List<ManifestProblem> problems)
    {
        using var reader = File.OpenText(path);
        ReadText(path, reader, documents, problems);
    }

    public static void ReadText(string source, TextReader text, List<ManifestDocument> documents, List<ManifestProblem> problems)
    {
        var stream = new YamlStream();
        try
        {
            stream.Load(text);
        }
        catch (YamlException e)
        {
            // After a syntax error nothing later in the file can be trusted: one problem for the file.
            var message = e.InnerException?.Message ?? e.Message;
            problems.Add(new ManifestProblem(source, "syntax", null, (int)e.Start.Line, $"not valid YAML or JSON: {message}"));
            return;
        }
        for (var d = 0; d < stream.Documents.Count; d++)
        {
            var root = stream.Documents[d].RootNode;
            var position = $"document {d + 1}";
            if (MessageReader.IsNull(root)) continue;
            switch (root)
            {
                case YamlSequenceNode list:
                    ReadItems(source, position, list, documents, problems);
                    break;
                case YamlMappingNode map when Scalar(map, "kind") == "List":
                    if (Child(map, "items") is YamlSequenceNode items) ReadItems(source, position, items, documents, problems);
                    else problems.Add(new ManifestProblem(source, position, "items", MessageReader.LineOf(map), "a List needs a list of items"));
                    break;
                default:
                    ReadObject(source, position, root, documents, problems);
                    break;
            }
        }
    }

    private static void ReadItems(string source, string position, YamlSequenceNode list, List<ManifestDocument> documents, List<ManifestProblem> problems)
    {
        for (var i = 0; i < list.Children.Count; i++) ReadObject(source, $"{position}, item {i + 1}", list.Children[i], documents, problems);
    }

    private static void ReadObject(string source, string position, YamlNode node, List<ManifestDocument> documents, List<ManifestProblem> problems)
    {
        var line = MessageReader.LineOf(node);
        if (node is not YamlMappingNode map)
        {
            problems.Add(new ManifestProblem(source, position, null, line, "expected an object with apiVersion, kind, metadata and spec"));
            return;
        }
        var kindName = Scalar(map, "kind");
        var apiVersion = Scalar(map, "apiVersion");
        var found = false;
        if (kindName is null)
        {
            problems.Add(new ManifestProblem(source, position, "kind", line, $"is required (one of {KindList()})"));
        }
        var kind = kindName is null ? null : ResourceKinds.FromManifestKind(kindName);
        // A kind Kubernetes users already write may carry Kubernetes' apiVersion for it.
        var versions = kind?.KubernetesApiVersion is { } alternative ? $"{ApiVersion} or {alternative}" : ApiVersion;
        if (apiVersion is null)
        {
            problems.Add(new ManifestProblem(source, position, "apiVersion", line, $"is required ({versions})"));
        }
        else if (apiVersion != ApiVersion && apiVersion != kind?.KubernetesApiVersion)
        {
            problems.Add(new ManifestProblem(source, position, "apiVersion", LineOf(map, "apiVersion"), $"'{apiVersion}' is not {versions}"));
        }
        if (kindName is null) return;
        if (kind is null || kind.ReadOnly)
        {
            problems.Add(new ManifestProblem(source, position, "kind", LineOf(map, "kind"), kind is null
                ? $"'{kindName}' is not a kind netctl applies (one of {KindList()})"
                : $"{kindName} objects are derived by the control plane and cannot be applied"));
            return;
        }
        var message = kind.NewMessage();
        var reader = new MessageReader();
        var body = new YamlMappingNode();
        foreach (var (keyNode, value) in map.Children)
        {
            var key = (keyNode as YamlScalarNode)?.Value;
            if (key is "apiVersion" or "kind") continue;
            // Status is the server's: accepted (output of get -o yaml applies as is) and ignored.
            if (key == "status" && kind.Descriptor.FindFieldByName("status") is not null) continue;
            if (key is "metadata") found = true;
            body.Add(keyNode, value);
        }
        reader.ReadInto(message, body, string.Empty, string.Empty);
        var document = new ManifestDocument
        {
            Source = source,
            Position = position,
            Kind = kind,
            Message = message,
            Locations = reader.Locations,
            Line = line,
        };
        if (!found) problems.Add(document.Problem("metadata", "is required (with at least a name)"));
        foreach (var (typed, at, text) in reader.Problems)
        {
            document.UnreadableFields.Add(typed);
            problems.Add(new ManifestProblem(source, document.Describe(), typed, at, text));
        }
        documents.Add(document);
    }

    private static string KindList() => string.Join(", ", ResourceKinds.All.Where(k => !k.ReadOnly).Select(k => k.Name));

    private static YamlNode? Child(YamlMappingNode map, string key) =>
        map.Children.FirstOrDefault(c => c.Key is YamlScalarNode { Value: { } k } && k == key).Value;

    private static string? Scalar(YamlMappingNode map, string key) => (Child(map, key) as YamlScalarNode)?.Value is { Length: > 0 } v ? v : null;

    private static int LineOf(YamlMappingNode map, string key) => Child(map, key) is { } node ? MessageReader.LineOf(node) : MessageReader.LineOf(map);
}
