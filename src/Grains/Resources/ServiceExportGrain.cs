using ControlPlane.Contracts.V1;
using ControlPlane.Grains.ClusterSet;
using ControlPlane.Grains.State;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// A ServiceExport: the service of the same namespace and name is offered to every cluster of
/// the set. It has no spec; its conditions (Valid, Conflict) are set by the ClusterSet controller.
/// The service need not exist yet: the export is then not Valid until it does.
/// </summary>
[GrainType(Kinds.ServiceExport)]
internal sealed class ServiceExportGrain(ObjectServices services) : ResourceGrain<ServiceExport>(services), IServiceExportGrain
{
    protected override bool Namespaced => true;

    protected override ObjectMeta MetaOf(ServiceExport resource) => resource.Metadata ??= new ObjectMeta();

    protected override IReadOnlyList<(string Kind, string Key)> References(ServiceExport state) => [(Kinds.Namespace, state.Metadata.Namespace)];

    protected override void ValidateName(string name)
    {
        // It names a service, whose names start with a letter (DNS-1035).
        Validation.Names.RequireLabel("metadata.name", name);
        if (!char.IsAsciiLetter(name[0])) throw ControlPlaneException.Invalid("metadata.name", $"'{name}' must start with a letter (it names a service)");
    }

    protected override void Validate(ServiceExport resource)
    {
    }

    protected override Task<Reservation> PrepareCreateAsync(ServiceExport resource)
    {
        resource.Status = new ServiceExportStatus();
        return Task.FromResult(Reservation.None);
    }

    protected override ServiceExport Merge(ServiceExport current, ServiceExport requested)
    {
        current.Metadata.Labels.Clear();
        current.Metadata.Labels.Add(requested.Metadata.Labels);
        return current;
    }

    public async Task SetStatusAsync(ServiceExportStatus status)
    {
        if (State is null)
        {
            return;
        }
        var wanted = State.Clone();
        wanted.Status ??= new ServiceExportStatus();
        var now = Time.GetUtcNow();
        foreach (var condition in status.Conditions)
        {
            Conditions.Set(wanted.Status.Conditions, condition.Clone(), now);
        }
        if (!wanted.Equals(State))
        {
            await CommitAsync(wanted);
        }
    }
}
