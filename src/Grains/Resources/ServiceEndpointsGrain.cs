using ControlPlane.Contracts.V1;
using ControlPlane.Grains.State;

namespace ControlPlane.Grains.Resources;

[GrainType(Kinds.ServiceEndpoints)]
internal sealed class ServiceEndpointsGrain(ObjectServices services) : ResourceGrain<ServiceEndpoints>(services), IServiceEndpointsGrain
{
    protected override bool Namespaced => true;

    protected override ObjectMeta MetaOf(ServiceEndpoints resource) => resource.Metadata ??= new ObjectMeta();

    protected override (string Namespace, string Index) Describe(ServiceEndpoints state) => (state.Metadata.Namespace, state.Network);

    protected override void Validate(ServiceEndpoints resource)
    {
    }

    protected override ServiceEndpoints Merge(ServiceEndpoints current, ServiceEndpoints requested) => requested;

    public async Task PutAsync(ServiceEndpoints endpoints)
    {
        var wanted = endpoints.Clone();
        if (State is null)
        {
            wanted.Metadata.Uid = Guid.NewGuid().ToString();
            wanted.Metadata.CreateTime = Google.Protobuf.WellKnownTypes.Timestamp.FromDateTimeOffset(Time.GetUtcNow());
            await WriteAsync(wanted);
            return;
        }
        wanted.Metadata.Uid = State.Metadata.Uid;
        wanted.Metadata.CreateTime = State.Metadata.CreateTime;
        if (!wanted.Equals(State))
        {
            await CommitAsync(wanted);
        }
    }

    public Task DeleteAsync() => State is null ? Task.CompletedTask : ClearAsync();
}
