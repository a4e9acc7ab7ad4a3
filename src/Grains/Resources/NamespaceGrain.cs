using ControlPlane.Contracts.V1;
using ControlPlane.Grains.State;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>A namespace: scopes endpoints, services and policies. Refuses deletion while it holds any.</summary>
[GrainType(Kinds.Namespace)]
internal sealed class NamespaceGrain(ObjectServices services) : ResourceGrain<Namespace>(services), INamespaceGrain
{
    private static readonly string[] Contents = [Kinds.Endpoint, Kinds.Service, Kinds.NetworkPolicy];

    protected override bool Namespaced => false;

    protected override ObjectMeta MetaOf(Namespace resource) => resource.Metadata ??= new ObjectMeta();

    protected override void Validate(Namespace resource)
    {
    }

    protected override Namespace Merge(Namespace current, Namespace requested)
    {
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        return current;
    }

    protected override Task CheckDeleteAsync(Namespace current)
    {
        var page = Store.List(Contents, Key + "/", null, 1);
        if (page.Objects.Count > 0)
        {
            throw new ControlPlaneException(ErrorCode.FailedPrecondition,
                $"namespace '{Key}' still holds {page.Objects[0].Kind} '{page.Objects[0].Key}'; delete its objects first");
        }
        return Task.CompletedTask;
    }
}
