using System.Globalization;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.State;
using ControlPlane.Storage;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;
using Google.Protobuf;
using Google.Protobuf.WellKnownTypes;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Grains.Resources;

/// <summary>
/// The shared create/get/update/delete flow of API objects. Subclasses supply validation and
/// the hooks where they reserve and release what an object holds (addresses, VIPs, ranges): a
/// reservation is made before the commit and undone if the commit fails; the commit carries the
/// object's claims, so the store itself refuses a second holder; a release after a delete names
/// the deleted object, so it can never free what another object holds by then.
/// </summary>
public abstract class ResourceGrain<T>(ObjectServices services) : Grain, IResourceGrain<T>
    where T : class, IMessage<T>, new()
{
    private const int ClaimAttempts = 3;
    private readonly ObjectState<T> _object = new();
    private GrainState<ObjectState<T>>? _state;
    private string? _key;
    // The state as callers see it (with its etag), made once per revision and shared: callers
    // never change what a grain returns.
    private T? _current;

    /// <summary>What a create reserved before its commit.</summary>
    /// <param name="Claims">What the new object holds exclusively, checked by the store at commit.</param>
    /// <param name="Undo">Gives the reservation back when the commit fails.</param>
    /// <param name="Resync">Rebuilds the allocator from the store when the store refused a claim (then the create tries again).</param>
    protected sealed record Reservation(IReadOnlyList<Claim>? Claims = null, Func<Task>? Undo = null, Func<Task>? Resync = null)
    {
        public static readonly Reservation None = new();
    }

    protected ObjectServices Services { get; } = services;

    protected TimeProvider Time => Services.Time;

    /// <summary>Committed state of other objects (read only).</summary>
    protected IGrainStore Store => Services.Store;

    protected string Key => _key ??= this.GetPrimaryKeyString();

    private GrainState<ObjectState<T>> GrainState => _state ??= new(_object);

    /// <summary>The committed state, or null if the object does not exist.</summary>
    protected T? State => _object.Value;

    /// <summary>Revision of the last committed change (0 while the object does not exist).</summary>
    protected long Revision => ObjectStorage.RevisionOf(GrainState);

    /// <summary>True for kinds whose key is "namespace/name".</summary>
    protected abstract bool Namespaced { get; }

    protected abstract ObjectMeta MetaOf(T resource);

    /// <summary>Checks the user-supplied fields; throws INVALID_ARGUMENT naming the field.</summary>
    protected abstract void Validate(T resource);

    /// <summary>Checks the name against the kind's naming rule.</summary>
    protected virtual void ValidateName(string name) => Validation.Names.RequireLabel("metadata.name", name);

    /// <summary>Fills server-owned fields and reserves what the object holds.</summary>
    protected virtual Task<Reservation> PrepareCreateAsync(T resource) => Task.FromResult(Reservation.None);

    /// <summary>What a create or update whose claim the store refused (and that is not retried) tells the caller.</summary>
    protected virtual ControlPlaneException ClaimRefused(ClaimTakenException refused) =>
        new(ErrorCode.AlreadyExists, refused.Message);

    /// <summary>Builds the new state from the current one and the request (immutables checked here).</summary>
    protected abstract T Merge(T current, T requested);

    /// <summary>
    /// Before an update is validated: fields the request leaves unset that keep their current
    /// value rather than their default (as Kubernetes defaults an update from the stored object).
    /// </summary>
    protected virtual void Inherit(T current, T requested)
    {
    }

    /// <summary>
    /// What an updated object holds exclusively, replacing its claims in the same commit, or null
    /// to keep them (kinds whose claims never change after create). A claim the store refuses
    /// fails the update with <see cref="ClaimRefused"/> and changes nothing.
    /// </summary>
    protected virtual IReadOnlyList<Claim>? ClaimsAfterUpdate(T updated) => null;

    /// <summary>
    /// For an update that changes what the object holds (a service that becomes or stops being
    /// CLUSTER_IP): fills server-owned fields of <paramref name="updated"/> and reserves what it
    /// holds now. The reservation's claims replace the object's (none when null), its references
    /// are checked at the commit, and a failed commit undoes it. Null: the update holds what
    /// <see cref="ClaimsAfterUpdate"/> says.
    /// </summary>
    protected virtual Task<Reservation?> PrepareUpdateAsync(T current, T updated) => Task.FromResult<Reservation?>(null);

    /// <summary>Releases what the object held before an update and holds no more, after the update is durable.</summary>
    protected virtual Task AfterUpdateAsync(T previous, T updated) => Task.CompletedTask;

    /// <summary>
    /// The objects this one refers to (its namespace, an endpoint's node), which must exist when
    /// it is created and cannot be deleted while it exists: the create requires them, holds a
    /// reference claim on each but its namespace (<see cref="WithReferences"/>), and the store
    /// checks both sides in the commit's transaction. Checks made before the commit (a read of the
    /// namespace) give the usual answer sooner; these decide when a create and a delete race.
    /// </summary>
    protected virtual IReadOnlyList<(string Kind, string Key)> References(T state) => [];

    /// <summary>What a delete refused because <paramref name="kind"/> '<paramref name="key"/>' still refers to this object tells the caller.</summary>
    protected virtual ControlPlaneException StillReferenced(string kind, string key) =>
        new(ErrorCode.FailedPrecondition, $"{typeof(T).Name} '{Key}' is still referred to by {kind} '{key}'; delete that first");

    /// <summary>A write the store refused for a reference, worded for the caller.</summary>
    private ControlPlaneException Refused(ReferenceException refused) =>
        refused.Missing ? MissingReference(refused.Kind, refused.Key) : StillReferenced(refused.Kind, refused.Key);

    /// <summary>What a create whose referenced object does not exist tells the caller, whether a read or the commit found it missing.</summary>
    protected static ControlPlaneException MissingReference(string kind, string key) => kind switch
    {
        Kinds.Namespace => new(ErrorCode.NotFound, $"namespace '{key}' not found", "metadata.namespace"),
        Kinds.Node => new(ErrorCode.FailedPrecondition, $"node '{key}' is not registered", "spec.node"),
        Kinds.Network => new(ErrorCode.FailedPrecondition, $"network '{key}' does not exist", "spec.network"),
        _ => new(ErrorCode.FailedPrecondition, $"{kind} '{key}' does not exist"),
    };

    /// <summary>
    /// The key of the first stored <paramref name="kind"/> object that <paramref name="refers"/>
    /// to this one, read page by page (a scan: for deletes, which are rare), or null.
    /// </summary>
    protected async Task<string?> FirstReferrerAsync<TOther>(string kind, MessageParser<TOther> parser, Func<TOther, bool> refers)
        where TOther : IMessage<TOther>
    {
        string? after = null;
        while (true)
        {
            var page = await Store.ListAsync([kind], null, after, 1000);
            foreach (var stored in page.Objects)
            {
                if (refers(parser.ParseFrom(stored.Data))) return stored.Key;
            }
            if (!page.HasMore || page.Objects.Count == 0) return null;
            after = page.Objects[^1].Key;
        }
    }

    /// <summary>
    /// <paramref name="claims"/> with the reference claims of <paramref name="references"/> added
    /// (null stays null when there are none). A namespace needs none: its delete finds its
    /// contents by their keys ("namespace/name", see <see cref="Contents"/>), with no write per
    /// object created in it.
    /// </summary>
    private IReadOnlyList<Storage.Claim>? WithReferences(IReadOnlyList<Storage.Claim>? claims, IReadOnlyList<(string Kind, string Key)> references) =>
        references.Any(r => r.Kind != Kinds.Namespace)
            ? [.. claims ?? [], .. references.Where(r => r.Kind != Kinds.Namespace).Select(r => Storage.Claim.Reference(r.Kind, r.Key, this.GetGrainId().Type.ToString()!, Key))]
            : claims;

    /// <summary>For a delete: kinds and a key prefix under which no object may exist when it commits (a namespace's contents).</summary>
    protected virtual (IReadOnlyList<string> Kinds, string KeyPrefix)? Contents => null;

    /// <summary>Refuses an update that would break an invariant (after the merge, before the write).</summary>
    protected virtual Task CheckUpdateAsync(T current, T updated) => Task.CompletedTask;

    /// <summary>Refuses a delete that would break an invariant.</summary>
    protected virtual Task CheckDeleteAsync(T current) => Task.CompletedTask;

    /// <summary>Releases what the object held, after the delete is durable.</summary>
    protected virtual Task AfterDeleteAsync(T deleted) => Task.CompletedTask;

    /// <summary>The namespace and secondary-index value recorded with the state (watch filters, lookups).</summary>
    protected virtual (string Namespace, string Index) Describe(T state) => (MetaOf(state).Namespace, string.Empty);

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        await Services.Storage.ReadStateAsync(ObjectStorage.Name, this.GetGrainId(), GrainState);
        // Where the object is indexed goes with every change record, its delete's included:
        // a state read back from the store is described as a written one is.
        if (_object.Value is { } loaded)
        {
            (_object.Namespace, _object.Index) = Describe(loaded);
        }
    }

    public async Task<T> CreateAsync(T resource)
    {
        // The grain owns what it is given (callers hand over a message they do not touch again;
        // in-silo calls pass it by reference), so it is not copied.
        var created = resource;
        var meta = MetaOf(created);
        CheckIdentity(meta);
        // An etag names a version of an existing object (Kubernetes refuses a resourceVersion on
        // create the same way): a client sending one expects to change what it read, not to create.
        if (meta.Etag.Length > 0)
        {
            throw ControlPlaneException.Invalid("metadata.etag", "is set, but a create makes a new object: leave it empty, or use Update");
        }
        // Once before the kind's checks, whose cost grows with the object (a refused policy of
        // megabytes took seconds of them), and again after, since they may add server-owned fields.
        Validation.ObjectSize.Require(created);
        // Labels after the kind's checks, which may set server-owned ones (a namespace's name label).
        Validate(created);
        Validation.Names.RequireLabels("metadata.labels", meta.Labels);
        Validation.ObjectSize.Require(created);
        if (State is not null)
        {
            throw new ControlPlaneException(ErrorCode.AlreadyExists, $"{typeof(T).Name} '{Key}' already exists");
        }
        meta.Uid = Guid.NewGuid().ToString();
        meta.CreateTime = Timestamp.FromDateTimeOffset(Time.GetUtcNow());
        if (Namespaced && await Store.ReadAsync(Kinds.Namespace, meta.Namespace) is null)
        {
            throw MissingReference(Kinds.Namespace, meta.Namespace);
        }
        await WriteReservedAsync(() => PrepareCreateAsync(created)!, reservation =>
        {
            var references = References(created);
            return WriteAsync(created, WithReferences(reservation!.Claims, references), references);
        });
        return Current();
    }

    public Task<T> GetAsync() => Task.FromResult(Current());

    public async Task<T> UpdateAsync(T resource)
    {
        var existing = RequireState();
        var requested = resource;
        var meta = MetaOf(requested);
        CheckIdentity(meta);
        CheckEtag(meta.Etag, "metadata.etag");
        // A uid is a precondition, as in Kubernetes: the update was written for that object, not
        // for one created since under the same name.
        if (meta.Uid.Length > 0 && meta.Uid != MetaOf(existing).Uid)
        {
            throw new ControlPlaneException(ErrorCode.Aborted,
                $"{ControlPlaneException.Quote(meta.Uid)} is not the uid of {typeof(T).Name} '{Key}' ('{MetaOf(existing).Uid}'): it was deleted and created again since it was read; read it again", "metadata.uid");
        }
        Inherit(existing, requested);
        // Before the kind's checks too, as a create's (their cost grows with the object).
        Validation.ObjectSize.Require(requested);
        Validate(requested);
        Validation.Names.RequireLabels("metadata.labels", meta.Labels);
        var updated = Merge(existing.Clone(), requested);
        Validation.ObjectSize.Require(updated);
        var updatedMeta = MetaOf(updated);
        var existingMeta = MetaOf(existing);
        updatedMeta.Uid = existingMeta.Uid;
        updatedMeta.CreateTime = existingMeta.CreateTime;
        updatedMeta.Etag = existingMeta.Etag;
        if (updated.Equals(existing))
        {
            return Current();
        }
        await CheckUpdateAsync(existing, updated);
        await WriteReservedAsync(() => PrepareUpdateAsync(existing, updated), reservation =>
        {
            var references = References(updated);
            if (reservation is null)
            {
                // Replaced claims keep the object's references, which did not change.
                return WriteAsync(updated, ClaimsAfterUpdate(updated) is { } claims ? WithReferences(claims, references) : null);
            }
            // What the object holds now replaces what it held, and its references (which may have
            // changed with it) must exist at the commit, as on create.
            return WriteAsync(updated, WithReferences(reservation.Claims ?? [], references), references);
        });
        await AfterCommitAsync(() => AfterUpdateAsync(existing, updated), "update");
        return Current();
    }

    /// <summary>
    /// Reserves (<paramref name="prepare"/>) and commits (<paramref name="write"/>). A failed
    /// commit gives the reservation back. When the store refused a claim an allocator handed out,
    /// the allocator's memory is stale (a duplicate activation, a rebuild racing a release): it is
    /// rebuilt from the store and the write tried again, <see cref="ClaimAttempts"/> times in all.
    /// </summary>
    private async Task WriteReservedAsync(Func<Task<Reservation?>> prepare, Func<Reservation?, Task> write)
    {
        for (var attempt = 1; ; attempt++)
        {
            var reservation = await prepare();
            try
            {
                await write(reservation);
                return;
            }
            catch (Exception e)
            {
                if (reservation?.Undo is not null)
                {
                    await reservation.Undo();
                }
                if (e is ReferenceException refused)
                {
                    throw Refused(refused);
                }
                if (e is not ClaimTakenException taken)
                {
                    throw;
                }
                if (reservation?.Resync is null || attempt == ClaimAttempts)
                {
                    throw ClaimRefused(taken);
                }
                await reservation.Resync();
            }
        }
    }

    public async Task DeleteAsync(string etag)
    {
        var existing = RequireState();
        // A DeleteRequest's own field.
        CheckEtag(etag, "etag");
        await CheckDeleteAsync(existing);
        try
        {
            await ClearAsync();
        }
        catch (ReferenceException refused)
        {
            throw Refused(refused);
        }
        await AfterCommitAsync(() => AfterDeleteAsync(existing), "delete");
    }

    /// <summary>Waits before each repeat of work that failed after a commit.</summary>
    private static readonly TimeSpan[] AfterCommitRetries = [TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(5), TimeSpan.FromSeconds(30)];

    /// <summary>
    /// Runs what follows a durable change (giving addresses back to an allocator's memory, blocks
    /// back to networks). The change is made, so the caller is told it succeeded whatever happens
    /// here: an error would say a committed write failed, when an UNAVAILABLE promises that
    /// nothing was done and a retry then finds the object gone or changed. What failed is tried
    /// again in the background, every step being idempotent; what still fails is logged. Nothing
    /// is lost meanwhile: the store's claims decide who holds what, an allocator that hands out an
    /// address the store still sees held rebuilds from the store, and one activated anew reads it.
    /// </summary>
    private async Task AfterCommitAsync(Func<Task> work, string change)
    {
        try
        {
            await work();
        }
        catch (Exception e)
        {
            Log.LogWarning(e, "{Kind} '{Key}': the {Change} is committed, but what follows it failed; trying again in the background", typeof(T).Name, Key, change);
            _ = RepeatAfterCommitAsync(work, change);
        }
    }

    private async Task RepeatAfterCommitAsync(Func<Task> work, string change)
    {
        Exception? last = null;
        foreach (var delay in AfterCommitRetries)
        {
            await Task.Delay(delay, Time);
            try
            {
                await work();
                Log.LogInformation("{Kind} '{Key}': what follows the {Change} is done", typeof(T).Name, Key, change);
                return;
            }
            catch (Exception e)
            {
                last = e;
            }
        }
        Log.LogError(last, "{Kind} '{Key}': what follows the {Change} still fails; an allocator's memory is rebuilt from the store when it next activates", typeof(T).Name, Key, change);
    }

    private ILogger? _log;

    private ILogger Log => _log ??= ServiceProvider.GetRequiredService<ILoggerFactory>().CreateLogger(GetType());

    /// <summary>
    /// The state with its etag, for callers. The committed object itself is returned and shared
    /// from then on, so nothing changes it afterwards: every change builds a new object. Its etag
    /// is filled in here, once, before it is first handed out.
    /// </summary>
    protected T Current()
    {
        if (_current is null)
        {
            var state = RequireState();
            MetaOf(state).Etag = Revision.ToString(CultureInfo.InvariantCulture);
            _current = state;
        }
        return _current;
    }

    /// <summary>
    /// The committed state, or NOT_FOUND. An activation of an object that does not exist is
    /// dropped after the call: a Get of a name nobody created (a typo, a client polling for an
    /// object yet to come, a scan of made-up names) would otherwise keep one in memory for each
    /// name until the idle timeout. The next call reads the store again.
    /// </summary>
    protected T RequireState()
    {
        if (State is { } state)
        {
            return state;
        }
        DeactivateOnIdle();
        throw new ControlPlaneException(ErrorCode.NotFound, $"{typeof(T).Name} '{Key}' not found");
    }

    /// <summary>Commits a server-side change of the state (status updates); what it holds stays.</summary>
    protected Task CommitAsync(T state) => WriteAsync(state);

    /// <summary>
    /// Commits <paramref name="value"/> as the object's state, replacing its claims when
    /// <paramref name="claims"/> is given. On failure the in-memory state stays what the store
    /// holds; after a failure that leaves that in doubt the activation is dropped, and the next
    /// call reloads from the store.
    /// </summary>
    protected async Task WriteAsync(T value, IReadOnlyList<Claim>? claims = null, IReadOnlyList<(string Kind, string Key)>? requires = null)
    {
        var state = _object;
        var previous = (state.Value, state.Namespace, state.Index, _current);
        _current = null;
        // Stored without an etag: the revision is the etag, filled in by Current().
        MetaOf(value).Etag = string.Empty;
        state.Value = value;
        (state.Namespace, state.Index) = Describe(value);
        state.PreviousIndex = previous.Index;
        state.Claims = claims;
        state.Requires = requires;
        try
        {
            await Services.Storage.WriteStateAsync(ObjectStorage.Name, this.GetGrainId(), GrainState);
        }
        catch (Exception e)
        {
            (state.Value, state.Namespace, state.Index, _current) = previous;
            // A refusal leaves the state as the store holds it; anything else leaves it in doubt.
            if (e is not (ClaimTakenException or ReferenceException))
            {
                DeactivateOnIdle();
            }
            throw;
        }
        finally
        {
            state.Claims = null;
            state.Requires = null;
            state.PreviousIndex = null;
        }
    }

    /// <summary>Deletes the object (and every claim it held); its last state goes into the change record.</summary>
    protected async Task ClearAsync()
    {
        try
        {
            _object.RequiresNone = Contents;
            await Services.Storage.ClearStateAsync(ObjectStorage.Name, this.GetGrainId(), GrainState);
            _object.Value = null;
            _current = null;
        }
        catch (Exception e) when (e is not ReferenceException)
        {
            DeactivateOnIdle();
            throw;
        }
        finally
        {
            _object.RequiresNone = null;
        }
    }

    private void CheckEtag(string etag, string field)
    {
        if (etag.Length > 0 && etag != Revision.ToString(CultureInfo.InvariantCulture))
        {
            throw new ControlPlaneException(ErrorCode.Aborted,
                $"etag {ControlPlaneException.Quote(etag)} does not match the current etag '{Revision}' of {typeof(T).Name} '{Key}'; read it again", field);
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
            throw ControlPlaneException.Invalid("metadata.name", $"does not match the addressed object {ControlPlaneException.Quote(Key)}");
        }
    }
}
