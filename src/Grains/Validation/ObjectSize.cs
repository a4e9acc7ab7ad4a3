using Google.Protobuf;
using Google.Protobuf.Reflection;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Validation;

/// <summary>
/// The bound on one object's encoded size. Every List page and watch event carries whole objects,
/// and stock gRPC clients (grpc-js, grpc-go, Grpc.Net.Client) refuse messages over 4 MiB by
/// default: one larger object would make every default-configured watcher of its kind fail for as
/// long as it exists. Kubernetes bounds objects the same way (1.5 MiB, etcd's request limit).
/// </summary>
public static class ObjectSize
{
    /// <summary>1 MiB: with the server's fields and a watch event's framing, far below 4 MiB.</summary>
    public const int MaxObjectBytes = 1024 * 1024;

    /// <summary>INVALID_ARGUMENT naming the largest part (e.g. "spec.ports") when the object is over the bound.</summary>
    public static void Require(IMessage resource)
    {
        var size = resource.CalculateSize();
        if (size <= MaxObjectBytes) return;
        var (path, partSize) = Largest(resource, string.Empty, depth: 2);
        throw ControlPlaneException.Invalid(path, $"is {partSize} bytes of an object of {size} bytes; an object may be at most {MaxObjectBytes} bytes");
    }

    /// <summary>
    /// The bytes left for repeated entries in <paramref name="skeleton"/> (a derived object without
    /// them) within <see cref="MaxObjectBytes"/>, with room for what the server fills in on write
    /// (etag, uid, creation time).
    /// </summary>
    public static long Budget(IMessage skeleton) => MaxObjectBytes - skeleton.CalculateSize() - 256;

    /// <summary>The bytes an entry adds to a repeated message field numbered below 16: tag, length and body.</summary>
    public static int EntrySize(IMessage entry) => 1 + CodedOutputStream.ComputeMessageSize(entry);

    /// <summary>How many of <paramref name="entries"/>, from the first, fit in <paramref name="budget"/> bytes, and the bytes they take.</summary>
    public static (int Count, long Bytes) Fitting<T>(IEnumerable<T> entries, long budget) where T : IMessage
    {
        var (count, used) = (0, 0L);
        foreach (var entry in entries)
        {
            var size = EntrySize(entry);
            if (used + size > budget) break;
            used += size;
            count++;
        }
        return (count, used);
    }

    /// <summary>
    /// The field of <paramref name="message"/> with the most bytes, descending into messages. A
    /// field's bytes are what clearing it saves, so maps, repeated and scalar fields all count
    /// exactly (this runs only for a refused object).
    /// </summary>
    private static (string Path, int Size) Largest(IMessage message, string prefix, int depth)
    {
        var total = message.CalculateSize();
        (string Path, int Size, FieldDescriptor? Field) best = (prefix.TrimEnd('.'), total, null);
        var encoded = message.ToByteString();
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            if (!Present(message, field)) continue;
            var without = message.Descriptor.Parser.ParseFrom(encoded);
            field.Accessor.Clear(without);
            var size = total - without.CalculateSize();
            if (best.Field is null || size > best.Size) best = (prefix + field.Name, size, field);
        }
        return depth > 1 && best.Field?.Accessor.GetValue(message) is IMessage inner
            ? Largest(inner, best.Path + ".", depth - 1)
            : (best.Path, best.Size);
    }

    /// <summary>Whether clearing <paramref name="field"/> could save anything (an empty or unset one is skipped, not copied).</summary>
    private static bool Present(IMessage message, FieldDescriptor field) => field.Accessor.GetValue(message) switch
    {
        null => false,
        System.Collections.ICollection { Count: 0 } => false,
        _ => true,
    };
}
