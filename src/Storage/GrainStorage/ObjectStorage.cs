using System.Collections.Concurrent;
using System.Globalization;
using ControlPlane.Storage.Errors;
using Orleans.Runtime;
using Orleans.Storage;

namespace ControlPlane.Storage.GrainStorage;

/// <summary>
/// The Orleans grain storage provider of the control plane. A grain's state is one object row:
/// kind = the grain type, key = the grain's string key. Each write goes through the group
/// committer, so the state and its change record commit in one transaction, shared with the
/// writes of other grains queued at the same moment; the etag is the object's revision in its
/// partition. A write whose etag no longer matches fails with
/// <see cref="InconsistentStateException"/> (Orleans then deactivates the stale activation, e.g.
/// a duplicate during a membership change); a write whose claims another object holds fails
/// with <see cref="ErrorCode.ClaimTaken"/>.
/// </summary>
public sealed class ObjectStorage(DurableStore store) : IGrainStorage
{
    /// <summary>The provider name grains use.</summary>
    public const string Name = "objects";

    private readonly ConcurrentDictionary<GrainType, string> _kinds = new();

    public async Task ReadStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var state = StateOf(grainState);
        var (kind, key) = Identify(grainId);
        StoredObject? stored;
        long deleted;
        try
        {
            (stored, deleted) = await store.Store.ReadForActivationAsync(kind, key).ConfigureAwait(false);
        }
        catch (ControlPlaneException e) when (e.Code == ErrorCode.Unavailable)
        {
            store.Committer.ReportFailure(e.Message);
            throw;
        }
        if (stored is null)
        {
            state.Reset();
            grainState.ETag = EtagOf(deleted);
            grainState.RecordExists = false;
        }
        else
        {
            state.Decode(stored.Data);
            grainState.ETag = stored.Revision.ToString(CultureInfo.InvariantCulture);
            grainState.RecordExists = true;
        }
    }

    public async Task WriteStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        var state = StateOf(grainState);
        var (kind, key) = Identify(grainId);
        var revision = await CommitAsync(grainState, new WriteRequest
        {
            Kind = kind, Key = key, Partition = store.PartitionOf(kind, key),
            ExpectedRevision = RevisionOf(grainState), DeletedRevision = grainState.RecordExists ? 0 : RevisionOf(grainState.ETag),
            Data = state.Encode(), Namespace = state.Namespace, Index = state.Index, Claims = state.Claims, Requires = state.Requires,
            PreviousIndex = state.PreviousIndex,
        }).ConfigureAwait(false);
        grainState.ETag = EtagOf(revision);
        grainState.RecordExists = true;
    }

    public async Task ClearStateAsync<T>(string stateName, GrainId grainId, IGrainState<T> grainState)
    {
        if (!grainState.RecordExists)
        {
            return;
        }
        var state = StateOf(grainState);
        var (kind, key) = Identify(grainId);
        var deleted = await CommitAsync(grainState, new WriteRequest
        {
            Kind = kind, Key = key, Partition = store.PartitionOf(kind, key), ExpectedRevision = RevisionOf(grainState),
            Data = null, PreviousData = state.Encode(), Namespace = state.Namespace, Index = state.Index, RequiresNone = state.RequiresNone,
        }).ConfigureAwait(false);
        // The etag of an object that does not exist is its tombstone's: a create names it.
        grainState.ETag = EtagOf(deleted);
        grainState.RecordExists = false;
    }

    private async Task<long> CommitAsync<T>(IGrainState<T> grainState, WriteRequest request)
    {
        using var activity = Telemetry.StoreTelemetry.StartWrite(request.Kind, request.Key);
        if (activity is not null) request.TraceContext = activity.Context;
        try
        {
            return await store.Committer.WriteAsync(request).ConfigureAwait(false);
        }
        catch (ControlPlaneException e) when (e.Code == ErrorCode.Aborted)
        {
            activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, "conflict");
            throw new InconsistentStateException(e.Message, grainState.ETag, "a later revision");
        }
    }

    /// <summary>The object's revision; 0 while it does not exist (its etag is then its tombstone's revision, if any).</summary>
    public static long RevisionOf<T>(IGrainState<T> grainState) => grainState.RecordExists ? RevisionOf(grainState.ETag) : 0;

    private static long RevisionOf(string? etag) =>
        etag is null ? 0 : long.Parse(etag, NumberStyles.None, CultureInfo.InvariantCulture);

    private static string? EtagOf(long revision) => revision == 0 ? null : revision.ToString(CultureInfo.InvariantCulture);

    private static IStoredState StateOf<T>(IGrainState<T> grainState) =>
        grainState.State as IStoredState ?? throw new InvalidOperationException($"{typeof(T).Name} does not implement {nameof(IStoredState)}");

    private (string Kind, string Key) Identify(GrainId grainId) =>
        (_kinds.GetOrAdd(grainId.Type, static type => type.ToString()!), grainId.Key.ToString()!);
}
