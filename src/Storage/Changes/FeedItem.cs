using ControlPlane.Storage;

namespace ControlPlane.Storage.Changes;

public enum FeedItemType : byte
{
    /// <summary>An object of the initial snapshot (delivered as an added change) or a live change.</summary>
    Change,
    /// <summary>The initial snapshot is complete.</summary>
    InitialEventsEnd,
    /// <summary>Nothing to deliver within the idle time; the position may still have advanced.</summary>
    Idle,
}

public readonly record struct FeedItem(FeedItemType Type, Change? Change = null);
