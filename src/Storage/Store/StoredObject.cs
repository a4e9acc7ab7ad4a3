namespace ControlPlane.Storage;

/// <summary>An object's committed state as the store holds it.</summary>
/// <param name="Kind">Grain kind, e.g. "Endpoint".</param>
/// <param name="Key">Grain key, unique within the kind ("namespace/name" for namespaced kinds).</param>
/// <param name="Partition">Partition of the key space the object belongs to.</param>
/// <param name="Revision">Revision of the object's last change within its partition (its etag).</param>
/// <param name="Data">Serialised state.</param>
/// <param name="Namespace">Namespace of a namespaced object, else empty.</param>
/// <param name="Index">The kind's secondary index value, else empty.</param>
public sealed record StoredObject(string Kind, string Key, int Partition, long Revision, byte[] Data,
    string Namespace = "", string Index = "");
