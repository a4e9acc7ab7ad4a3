namespace ControlPlane.Storage;

/// <summary>
/// Maps an object to one of a fixed number of partitions of the key space (FNV-1a of kind and
/// key). The mapping never changes for a store, so an object's changes always share one
/// partition's revision sequence.
/// </summary>
public static class Partitioner
{
    public static int PartitionOf(string kind, string key, int partitionCount)
    {
        var hash = 2166136261u;
        foreach (var c in kind)
        {
            hash = (hash ^ c) * 16777619u;
        }
        hash = (hash ^ '/') * 16777619u;
        foreach (var c in key)
        {
            hash = (hash ^ c) * 16777619u;
        }
        return (int)(hash % (uint)partitionCount);
    }
}
