using ControlPlane.Cli.Resources;
using ControlPlane.Contracts.V1;
using Google.Protobuf;

namespace ControlPlane.Cli.Manifests;

/// <summary>One object read from a manifest: its kind, the message built from it, and where it came from.</summary>
internal sealed class ManifestDocument
{
    public required string Source { get; init; }

    /// <summary>"document 2" or "document 1, item 3" (1-based).</summary>
    public required string Position { get; init; }

    public required ResourceKind Kind { get; init; }

    public required IMessage Message { get; init; }

    /// <summary>Proto field path (spec.ports[0].port) → what the user typed there and its line.</summary>
    public required IReadOnlyDictionary<string, FieldLocation> Locations { get; init; }

    public required int Line { get; init; }

    /// <summary>Fields (as typed) that could not be read: checks of their values are not repeated.</summary>
    public HashSet<string> UnreadableFields { get; } = new(StringComparer.Ordinal);

    public ObjectMeta Meta => ResourceKind.MetaOf(Message);

    /// <summary>"Service shop/web" for messages.</summary>
    public string Label => $"{Kind.Name} {(Kind.Namespaced && Meta.Namespace.Length > 0 ? Meta.Namespace + "/" : string.Empty)}{Meta.Name}";

    /// <summary>"document 2 (Service shop/web)".</summary>
    public string Describe() => Meta.Name.Length > 0 ? $"{Position} ({Label})" : $"{Position} ({Kind.Name})";

    /// <summary>A problem at a proto field path, placed at the nearest field the user wrote.</summary>
    public ManifestProblem Problem(string? field, string message)
    {
        if (field is null) return new ManifestProblem(Source, Describe(), null, Line, message);
        for (var path = field; path.Length > 0; path = Parent(path))
        {
            if (Locations.TryGetValue(path, out var location))
            {
                var typed = path == field ? location.Typed : location.Typed + field[path.Length..];
                return new ManifestProblem(Source, Describe(), typed, location.Line, message);
            }
        }
        return new ManifestProblem(Source, Describe(), field, Line, message);
    }

    private static string Parent(string path)
    {
        var cut = Math.Max(path.LastIndexOf('.'), path.LastIndexOf('['));
        return cut <= 0 ? string.Empty : path[..cut];
    }
}

/// <summary>Where a field sits in the manifest: the path as the user spelled it, and its line.</summary>
internal readonly record struct FieldLocation(string Typed, int Line);
