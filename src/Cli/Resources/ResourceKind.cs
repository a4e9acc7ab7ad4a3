using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Google.Protobuf;
using Google.Protobuf.Reflection;
using Grpc.Core;

namespace ControlPlane.Cli.Resources;

/// <summary>
/// What netctl knows about one kind of object: its names on the command line and in manifests,
/// its scope, its protobuf message, its calls and its table columns. The calls are bound to the
/// typed client once, so every command handles every kind through this one shape.
/// </summary>
internal sealed class ResourceKind
{
    /// <summary>The manifest kind, e.g. "NetworkPolicy".</summary>
    public required string Name { get; init; }

    /// <summary>Lower-case names accepted on the command line: singular, plural and short forms.</summary>
    public required IReadOnlyList<string> Aliases { get; init; }

    public required bool Namespaced { get; init; }

    /// <summary>Derived by the control plane: no apply, no delete.</summary>
    public bool ReadOnly { get; init; }

    /// <summary>
    /// The apiVersion Kubernetes gives this kind, which manifests may carry instead of
    /// controlplane/v1 (multicluster.x-k8s.io/v1alpha1 for a ServiceExport), or null.
    /// </summary>
    public string? KubernetesApiVersion { get; init; }

    /// <summary>Order of creation in an apply (lower first; deletes run in reverse).</summary>
    public required int Tier { get; init; }

    public required MessageDescriptor Descriptor { get; init; }

    public required Kind WatchKind { get; init; }

    public required IReadOnlyList<Column> Columns { get; init; }

    public required Func<ControlPlaneClient, string, string, CallOptions, Task<IMessage>> Get { get; init; }

    /// <summary>One page: the objects and the next page token (empty at the end).</summary>
    public required Func<ControlPlaneClient, ListRequest, CallOptions, Task<(IReadOnlyList<IMessage> Items, string Next)>> ListPage { get; init; }

    public Func<ControlPlaneClient, IMessage, CallOptions, Task<IMessage>>? Create { get; init; }

    public Func<ControlPlaneClient, IMessage, CallOptions, Task<IMessage>>? Update { get; init; }

    public Func<ControlPlaneClient, string, string, string, CallOptions, Task>? Delete { get; init; }

    /// <summary>The object a watch event carries, when it is of this kind.</summary>
    public required Func<WatchEvent, IMessage?> FromEvent { get; init; }

    /// <summary>The plural used in messages and as the table's title ("endpoints").</summary>
    public string Plural => Aliases[1];

    /// <summary>"endpoint/shop/web-1" style reference used in apply and delete output.</summary>
    public string Reference(ObjectMeta meta) =>
        $"{Name.ToLowerInvariant()}/{(Namespaced ? meta.Namespace + "/" : string.Empty)}{meta.Name}";

    public static ObjectMeta MetaOf(IMessage message) =>
        (ObjectMeta?)message.Descriptor.FindFieldByName("metadata").Accessor.GetValue(message) ?? new ObjectMeta();

    public IMessage NewMessage() => (IMessage)Activator.CreateInstance(Descriptor.ClrType)!;

    public override string ToString() => Name;
}
