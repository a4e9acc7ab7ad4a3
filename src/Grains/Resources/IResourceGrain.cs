using Google.Protobuf;
using Orleans.Concurrency;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// The life cycle every API resource shares. The grain key is the object's name, or
/// "namespace/name" for namespaced kinds. Returned objects carry their etag. Messages passed in
/// or returned are never modified afterwards (they are not copied between grains).
/// </summary>
[Alias("controlplane.IResourceGrain`1")]
public interface IResourceGrain<T> : IGrainWithStringKey where T : IMessage<T>
{
    /// <summary>Validates and stores a new object. ALREADY_EXISTS if it exists.</summary>
    [Alias("Create")]
    Task<T> CreateAsync(T resource);

    /// <summary>The object, or NOT_FOUND. Runs beside other reads, never beside a write.</summary>
    [ReadOnly]
    [Alias("Get")]
    Task<T> GetAsync();

    /// <summary>Replaces the user-owned fields. ABORTED when a sent etag does not match.</summary>
    [Alias("Update")]
    Task<T> UpdateAsync(T resource);

    /// <summary>Deletes the object. ABORTED when a non-empty etag does not match.</summary>
    [Alias("Delete")]
    Task DeleteAsync(string etag);
}
