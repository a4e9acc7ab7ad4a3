using ControlPlane.Contracts.V1;
using ControlPlane.Grains.State;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// A namespace: scopes endpoints, services and policies. Refuses deletion while it holds any.
/// Like Kubernetes' API server, the server sets the label <c>kubernetes.io/metadata.name</c> to
/// the namespace's name on every create and update (so namespace selectors can name a namespace,
/// and every reader of the stored object sees the label); a request giving it another value is
/// refused.
/// </summary>
[GrainType(Kinds.Namespace)]
internal sealed class NamespaceGrain(ObjectServices services) : ResourceGrain<Namespace>(services), INamespaceGrain
{
    private const string NameLabel = Contracts.Policy.PolicySemantics.NamespaceNameLabel;
    private static readonly string[] Contained = [Kinds.Endpoint, Kinds.Service, Kinds.NetworkPolicy, Kinds.ServiceExport];

    protected override bool Namespaced => false;

    protected override ObjectMeta MetaOf(Namespace resource) => resource.Metadata ??= new ObjectMeta();

    protected override void Validate(Namespace resource)
    {
        var (name, labels) = (resource.Metadata.Name, resource.Metadata.Labels);
        if (labels.TryGetValue(NameLabel, out var value) && value != name)
        {
            throw ControlPlaneException.Invalid($"metadata.labels[{NameLabel}]", $"must equal the namespace's name '{name}', not {ControlPlaneException.Quote(value)}");
        }
        labels[NameLabel] = name;
    }

    protected override Namespace Merge(Namespace current, Namespace requested)
    {
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        return current;
    }

    /// <summary>Checked again in the delete's commit, so a create racing it cannot slip in.</summary>
    protected override (IReadOnlyList<string> Kinds, string KeyPrefix)? Contents => (Contained, Key + "/");

    protected override ControlPlaneException StillReferenced(string kind, string key) =>
        new(ErrorCode.FailedPrecondition, $"namespace '{Key}' still holds {kind} '{key}'; delete its objects first");

    protected override async Task CheckDeleteAsync(Namespace current)
    {
        var page = await Store.ListAsync(Contained, Key + "/", null, 1);
        if (page.Objects.Count > 0)
        {
            throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                $"namespace '{Key}' still holds {page.Objects[0].Kind} '{page.Objects[0].Key}'; delete its objects first");
        }
    }
}
