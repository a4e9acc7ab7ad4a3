using ControlPlane.Contracts.V1;

namespace ControlPlane.Grains.Resources;

internal sealed class ServiceEndpointsGrain(TimeProvider time) : ResourceGrain<ServiceEndpoints>(time), IServiceEndpointsGrain
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
            await WriteStateAsync(wanted).ConfigureAwait(false);
            return;
        }
        wanted.Metadata.Uid = State.Metadata.Uid;
        wanted.Metadata.CreateTime = State.Metadata.CreateTime;
        if (!wanted.Equals(State))
        {
            await CommitAsync(wanted).ConfigureAwait(false);
        }
    }

    public Task DeleteAsync() => State is null ? Task.CompletedTask : ClearStateAsync();
}
