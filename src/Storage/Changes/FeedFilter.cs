using ControlPlane.Storage;

namespace ControlPlane.Storage.Changes;

/// <summary>What a change feed delivers.</summary>
/// <param name="Kinds">Kinds to deliver (the snapshot reads only these).</param>
/// <param name="Namespace">When set, only objects of this namespace (keys "namespace/…").</param>
/// <param name="Predicate">
/// A further condition on each change and an index value: whether the change's object passes
/// when indexed so (its own <see cref="Change.Index"/>, or the <see cref="Change.PreviousIndex"/>
/// it moved from). Null: every object of the kinds and namespace passes.
/// </param>
public sealed record FeedFilter(IReadOnlyList<string> Kinds, string? Namespace = null, Func<Change, string, bool>? Predicate = null)
{
    private readonly HashSet<string> _kinds = new(Kinds, StringComparer.Ordinal);

    /// <summary>
    /// The change as this filter delivers it, or null. A modification that moves its object into
    /// the filter is delivered as added, one that moves it out as deleted (as Kubernetes' filtered
    /// watches do), so a watcher's view stays what a filtered list would show.
    /// </summary>
    public Change? Apply(Change change)
    {
        if (!_kinds.Contains(change.Kind) || (Namespace is not null && change.Namespace != Namespace)) return null;
        if (Predicate is null) return change;
        var now = Predicate(change, change.Index);
        if (change.Type != ChangeType.Modified || change.PreviousIndex is not { } before) return now ? change : null;
        return (Predicate(change, before), now) switch
        {
            (true, true) => change,
            (false, true) => change.As(ChangeType.Added),
            (true, false) => change.As(ChangeType.Deleted),
            _ => null,
        };
    }
}
