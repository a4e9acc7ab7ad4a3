namespace ControlPlane.Storage;

/// <summary>
/// One committed change: the record the change log keeps and the watch fan-out delivers.
/// For a deletion, <see cref="Data"/> holds the object's last state.
/// </summary>
public sealed class Change
{
    public required int Partition { get; init; }
    public required long Revision { get; init; }
    public required string Kind { get; init; }
    public required string Key { get; init; }
    public required ChangeType Type { get; init; }
    public required byte[] Data { get; init; }
    /// <summary>Namespace of a namespaced object, else empty (used by watch filters).</summary>
    public string Namespace { get; init; } = string.Empty;
    /// <summary>The kind's secondary index value (e.g. an endpoint's network), else empty.</summary>
    public string Index { get; init; } = string.Empty;

    /// <summary>
    /// A slot where the API layer caches its wire encoding of this change, so that a change
    /// fanned out to many watchers is serialised once.
    /// </summary>
    public object? EncodingCache { get; set; }
}
