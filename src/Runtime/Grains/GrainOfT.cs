using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Storage;

namespace ControlPlane.Runtime.Grains;

/// <summary>
/// A grain with durable state. <see cref="State"/> is null while the object does not exist.
/// Writes are conditional on <see cref="Revision"/> and complete once durable, with the state
/// and its change record committed in one transaction.
/// </summary>
public abstract class Grain<TState> : Grain where TState : class
{
    private bool _stale = true;

    /// <summary>The committed state, or null if the object does not exist.</summary>
    protected TState? State { get; private set; }

    /// <summary>Revision of the last committed change (0 while the object does not exist).</summary>
    protected long Revision { get; private set; }

    protected abstract byte[] Serialize(TState state);

    protected abstract TState Deserialize(byte[] data);

    /// <summary>The namespace and secondary-index value recorded with the state (watch filters, lookups).</summary>
    protected virtual (string Namespace, string Index) Describe(TState state) => (string.Empty, string.Empty);

    internal override Task LoadStateAsync()
    {
        if (!_stale)
        {
            return Task.CompletedTask;
        }
        var stored = Context.Runtime.Store.Read(Context.Id.Kind, Context.Id.Key);
        State = stored is null ? null : Deserialize(stored.Data);
        Revision = stored?.Revision ?? 0;
        _stale = false;
        return Task.CompletedTask;
    }

    /// <summary>Commits <paramref name="state"/> as the object's new state and returns its revision.</summary>
    protected async Task<long> WriteStateAsync(TState state)
    {
        var (ns, index) = Describe(state);
        var revision = await CommitAsync(new WriteRequest
        {
            Kind = Context.Id.Kind, Key = Context.Id.Key, Partition = Context.Partition,
            ExpectedRevision = Revision, Data = Serialize(state), Namespace = ns, Index = index,
        }).ConfigureAwait(false);
        State = state;
        Revision = revision;
        return revision;
    }

    /// <summary>Deletes the object; its last state goes into the change record.</summary>
    protected async Task ClearStateAsync()
    {
        if (State is null)
        {
            return;
        }
        var (ns, index) = Describe(State);
        await CommitAsync(new WriteRequest
        {
            Kind = Context.Id.Kind, Key = Context.Id.Key, Partition = Context.Partition,
            ExpectedRevision = Revision, Data = null, PreviousData = Serialize(State), Namespace = ns, Index = index,
        }).ConfigureAwait(false);
        State = null;
        Revision = 0;
    }

    private async Task<long> CommitAsync(WriteRequest request)
    {
        try
        {
            return await Context.Runtime.Committer.WriteAsync(request).ConfigureAwait(false);
        }
        catch (ControlPlaneException)
        {
            // Whatever happened, the in-memory state may no longer match the store: reload before the next call.
            _stale = true;
            throw;
        }
    }
}
