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
    /// For a modification that moved the object to another index value (a service moved to
    /// another network): the value before, so a filtered watch can tell the object left or
    /// entered its filter. Null when unchanged.
    /// </summary>
    public string? PreviousIndex { get; init; }

    /// <summary>This change as another type: what a filtered watch sees of a move into or out of its filter.</summary>
    public Change As(ChangeType type) => new()
    {
        Partition = Partition, Revision = Revision, Kind = Kind, Key = Key, Type = type, Data = Data,
        Namespace = Namespace, Index = Index, PreviousIndex = PreviousIndex,
        TraceContext = TraceContext, CommittedAt = CommittedAt,
    };

    /// <summary>
    /// A slot where the API layer caches its wire encoding of this change, so that a change
    /// fanned out to many watchers is serialised once.
    /// </summary>
    public object? EncodingCache { get; set; }

    /// <summary>
    /// The span of the write that made this change (in memory only, never stored): watchers carry
    /// it on the event so a trace follows the write to the agents. Default when not traced.
    /// </summary>
    public System.Diagnostics.ActivityContext TraceContext { get; set; }

    /// <summary>Stopwatch timestamp of the commit on this silo (0: read back from the log), for watch lag.</summary>
    public long CommittedAt { get; set; }
}
