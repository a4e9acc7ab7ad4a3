using ControlPlane.Storage;

namespace ControlPlane.Storage.Changes;

/// <summary>What a change feed delivers.</summary>
/// <param name="Kinds">Kinds to deliver (the snapshot reads only these).</param>
/// <param name="Namespace">When set, only objects of this namespace (keys "namespace/…").</param>
/// <param name="Predicate">A further condition on each change, or null.</param>
public sealed record FeedFilter(IReadOnlyList<string> Kinds, string? Namespace = null, Func<Change, bool>? Predicate = null)
{
    private readonly HashSet<string> _kinds = new(Kinds, StringComparer.Ordinal);

    public bool Matches(Change change) =>
        _kinds.Contains(change.Kind) &&
        (Namespace is null || change.Namespace == Namespace) &&
        (Predicate is null || Predicate(change));
}
