using System.Globalization;
using ControlPlane.Contracts.V1;
using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Grains;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// The shared create/get/update/delete flow of API objects. Subclasses supply validation and
/// the hooks where they reserve and release what an object holds (addresses, claims): a
/// reservation made before the commit is undone if the commit fails, and a release happens only
/// after a delete is durable, so nothing held is ever handed out twice.
/// </summary>
public abstract class ResourceGrain<T>(TimeProvider time) : Grain<T>, IResourceGrain<T>
    where T : class, IMessage<T>, new()
{
    private static readonly MessageParser<T> Parser = new(() => new T());

    protected TimeProvider Time { get; } = time;

    /// <summary>True for kinds whose key is "namespace/name".</summary>
    protected abstract bool Namespaced { get; }

    protected abstract ObjectMeta MetaOf(T resource);

    /// <summary>Checks the user-supplied fields; throws INVALID_ARGUMENT naming the field.</summary>
    protected abstract void Validate(T resource);

    /// <summary>Checks the name against the kind's naming rule.</summary>
    protected virtual void ValidateName(string name) => Validation.Names.RequireLabel("metadata.name", name);

    /// <summary>Fills server-owned fields and reserves what the object holds. Return an undo action.</summary>
    protected virtual Task<Func<Task>?> PrepareCreateAsync(T resource) => Task.FromResult<Func<Task>?>(null);

    /// <summary>Builds the new state from the current one and the request (immutables checked here).</summary>
    protected abstract T Merge(T current, T requested);

    /// <summary>Refuses a delete that would break an invariant.</summary>
    protected virtual Task CheckDeleteAsync(T current) => Task.CompletedTask;

    /// <summary>Releases what the object held, after the delete is durable.</summary>
    protected virtual Task AfterDeleteAsync(T deleted) => Task.CompletedTask;

    protected override byte[] Serialize(T state) => state.ToByteArray();

    protected override T Deserialize(byte[] data) => Parser.ParseFrom(data);

    protected override (string Namespace, string Index) Describe(T state) => (MetaOf(state).Namespace, string.Empty);

    public async Task<T> CreateAsync(T resource)
    {
        var created = resource.Clone();
        var meta = MetaOf(created);
        CheckIdentity(meta);
        Validation.Names.RequireLabels("metadata.labels", meta.Labels);
        Validate(created);
        if (State is not null)
        {
            throw new ControlPlaneException(ErrorCode.AlreadyExists, $"{typeof(T).Name} '{Key}' already exists");
        }
        meta.Etag = string.Empty;
        meta.Uid = Guid.NewGuid().ToString();
        meta.CreateTime = Timestamp.FromDateTimeOffset(Time.GetUtcNow());
        if (Namespaced && !await GrainFactory.GetGrain<INamespaceGrain>(meta.Namespace).ExistsAsync().ConfigureAwait(false))
        {
            throw new ControlPlaneException(ErrorCode.NotFound, $"namespace '{meta.Namespace}' not found", "metadata.namespace");
        }
        var undo = await PrepareCreateAsync(created).ConfigureAwait(false);
        try
        {
            await WriteStateAsync(created).ConfigureAwait(false);
        }
        catch when (undo is not null)
        {
            await undo().ConfigureAwait(false);
            throw;
        }
        return Current();
    }

    public Task<T> GetAsync() => Task.FromResult(Current());

    public async Task<T> UpdateAsync(T resource)
    {
        var existing = RequireState();
        var requested = resource.Clone();
        var meta = MetaOf(requested);
        CheckIdentity(meta);
        CheckEtag(meta.Etag);
        Validation.Names.RequireLabels("metadata.labels", meta.Labels);
        Validate(requested);
        var updated = Merge(existing.Clone(), requested);
        var updatedMeta = MetaOf(updated);
        var existingMeta = MetaOf(existing);
        updatedMeta.Uid = existingMeta.Uid;
        updatedMeta.CreateTime = existingMeta.CreateTime;
        updatedMeta.Etag = string.Empty;
        if (updated.Equals(existing))
        {
            return Current();
        }
        await WriteStateAsync(updated).ConfigureAwait(false);
        return Current();
    }

    public async Task DeleteAsync(string etag)
    {
        var existing = RequireState();
        CheckEtag(etag);
        await CheckDeleteAsync(existing).ConfigureAwait(false);
        await ClearStateAsync().ConfigureAwait(false);
        await AfterDeleteAsync(existing).ConfigureAwait(false);
    }

    /// <summary>A copy of the state with its etag, safe to hand to a caller.</summary>
    protected T Current()
    {
        var copy = RequireState().Clone();
        MetaOf(copy).Etag = Revision.ToString(CultureInfo.InvariantCulture);
        return copy;
    }

    protected T RequireState() =>
        State ?? throw new ControlPlaneException(ErrorCode.NotFound, $"{typeof(T).Name} '{Key}' not found");

    /// <summary>Commits a server-side change of the state (status updates).</summary>
    protected Task<long> CommitAsync(T state)
    {
        MetaOf(state).Etag = string.Empty;
        return WriteStateAsync(state);
    }

    private void CheckEtag(string etag)
    {
        if (etag.Length > 0 && etag != Revision.ToString(CultureInfo.InvariantCulture))
        {
            throw new ControlPlaneException(ErrorCode.Aborted,
                $"etag '{etag}' does not match the current etag '{Revision}' of {typeof(T).Name} '{Key}'; read it again", "metadata.etag");
        }
    }

    private void CheckIdentity(ObjectMeta meta)
    {
        var (ns, name) = Namespaced ? ObjectKeys.Split(Key) : (string.Empty, Key);
        if (Namespaced)
        {
            Validation.Names.RequireLabel("metadata.namespace", meta.Namespace);
        }
        else if (meta.Namespace.Length > 0)
        {
            throw ControlPlaneException.Invalid("metadata.namespace", $"{typeof(T).Name} is cluster-scoped and takes no namespace");
        }
        ValidateName(meta.Name);
        if (meta.Name != name || meta.Namespace != ns)
        {
            throw ControlPlaneException.Invalid("metadata.name", $"does not match the addressed object '{Key}'");
        }
    }
}
