using ControlPlane.Runtime.Grains;
using Google.Protobuf;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// The life cycle every API resource shares. The grain key is the object's name, or
/// "namespace/name" for namespaced kinds. Returned objects carry their etag.
/// </summary>
public interface IResourceGrain<T> : IGrain where T : IMessage<T>
{
    /// <summary>Validates and stores a new object. ALREADY_EXISTS if it exists.</summary>
    Task<T> CreateAsync(T resource);

    /// <summary>The object, or NOT_FOUND.</summary>
    [ReadOnly]
    Task<T> GetAsync();

    /// <summary>Replaces the user-owned fields. ABORTED when a sent etag does not match.</summary>
    Task<T> UpdateAsync(T resource);

    /// <summary>Deletes the object. ABORTED when a non-empty etag does not match.</summary>
    Task DeleteAsync(string etag);
}
