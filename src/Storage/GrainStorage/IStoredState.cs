namespace ControlPlane.Storage.GrainStorage;

/// <summary>
/// What a grain's state type tells <see cref="ObjectStorage"/>: its bytes, where watch filters
/// and lookups find it (namespace, secondary index), and what it holds exclusively. The storage
/// layer never looks inside the bytes.
/// </summary>
public interface IStoredState
{
    /// <summary>The namespace of a namespaced object, else empty.</summary>
    string Namespace { get; }

    /// <summary>The kind's secondary index value (e.g. an endpoint's network), else empty.</summary>
    string Index { get; }

    /// <summary>For the next write: the index value the object had before it (the store records it only where a modification changes it).</summary>
    string? PreviousIndex => null;

    /// <summary>What the next write holds (replacing the object's claims), or null to keep them.</summary>
    IReadOnlyList<Claim>? Claims { get; }

    /// <summary>Objects that must exist when the next write commits (see <see cref="WriteRequest.Requires"/>).</summary>
    IReadOnlyList<(string Kind, string Key)>? Requires => null;

    /// <summary>For the next delete: kinds and a key prefix under which no object may exist (see <see cref="WriteRequest.RequiresNone"/>).</summary>
    (IReadOnlyList<string> Kinds, string KeyPrefix)? RequiresNone => null;

    byte[] Encode();

    void Decode(byte[] data);

    /// <summary>The object does not exist.</summary>
    void Reset();
}
