using ControlPlane.Contracts.V1;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// What a <see cref="ResumableWatch"/> feeds. A list builds fresh state (begun by
/// <see cref="BeginList"/>, ended by <see cref="EndList"/>) so that the previous state stays in use
/// until the new one is complete; after that, changes apply to the current state.
/// </summary>
public interface IWatchSink
{
    /// <summary>A full list starts (first connect, or the resume position was compacted).</summary>
    void BeginList();

    /// <summary>An ADDED, MODIFIED or DELETED event, of the list or live.</summary>
    void Apply(WatchEvent watchEvent);

    /// <summary>The list is complete: it replaces the previous state.</summary>
    void EndList();

    /// <summary>After each live change (not during a list).</summary>
    void Changed();

    /// <summary>
    /// After each live change (after <see cref="Changed"/>) and each bookmark (the one that ends a
    /// list after <see cref="EndList"/>): the resume token everything applied so far leads up to.
    /// </summary>
    void Progress(string resumeToken) { }

    /// <summary>A PROGRAMMED event (only on watches that asked for them); it carries no token.</summary>
    void Programmed(WatchEvent programmed) { }
}
