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
        throw ControlPlaneException.Invalid(path.Length > 0 ? path : "metadata",
            $"is {partSize} bytes of an object of {size} bytes; an object may be at most {MaxObjectBytes} bytes");
    }

    /// <summary>The field of <paramref name="message"/> with the most bytes, descending into messages.</summary>
    private static (string Path, int Size) Largest(IMessage message, string prefix, int depth)
    {
        (string Path, int Size, object? Value) best = (prefix.TrimEnd('.'), message.CalculateSize(), null);
        var found = false;
        foreach (var field in message.Descriptor.Fields.InFieldNumberOrder())
        {
            var value = field.Accessor.GetValue(message);
            var size = value switch
            {
                IMessage m => m.CalculateSize(),
                System.Collections.IEnumerable items and not string => items.Cast<object>().Sum(Size),
                _ => Size(value),
            };
            if (!found || size > best.Size) (best, found) = ((prefix + field.Name, size, value), true);
        }
        if (!found) return (best.Path, best.Size);
        return depth > 1 && best.Value is IMessage inner ? Largest(inner, best.Path + ".", depth - 1) : (best.Path, best.Size);
    }

    private static int Size(object? value) => value switch
    {
        IMessage m => m.CalculateSize(),
        string s => System.Text.Encoding.UTF8.GetByteCount(s),
        ByteString b => b.Length,
        System.Collections.DictionaryEntry e => Size(e.Key) + Size(e.Value),
        _ => 8,
    };
}
