using System.Threading.Channels;
using ControlPlane.Storage.Changes;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.Telemetry;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Storage;

/// <summary>
/// The single writer of the store for this silo. Writes from all grains queue here; one loop takes
/// whatever has queued (up to <see cref="MaxBatch"/>) and commits it as one transaction, then
/// publishes the committed changes to the hub in commit order, and only then completes the
/// callers: an acknowledged write is durable (invariant 2) and watchers never see a change
/// that could still roll back.
/// </summary>
public sealed class GroupCommitter : IDisposable
{
    public const int MaxBatch = 512;

    private readonly IGrainStore _store;
    private readonly ChangeHub _hub;
    private readonly long[] _epochs;
    private readonly Channel<Pending> _queue = Channel.CreateUnbounded<Pending>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Task _loop;

    private readonly bool _publish;
    private readonly ILogger? _logger;

    /// <param name="publish">
    /// Publish committed changes to <paramref name="hub"/> before acknowledging them: true when this
    /// silo is the store's only writer; a shared store's changes reach the hub by reading the log back.
    /// </param>
    public GroupCommitter(IGrainStore store, ChangeHub hub, PartitionState partitions, bool publish = true, ILogger? logger = null)
    {
        _logger = logger;
        _store = store;
        _hub = hub;
        _publish = publish;
        _epochs = partitions.Epochs;
        _loop = Task.Run(RunAsync);
    }

    private string? _failure;
    // Commits failed so far, and how many of those a later commit or committed probe has answered
    // for: while they differ only a committed probe clears the failure.
    private long _failedCommits;
    private long _recoveredCommits;

    /// <summary>Transactions committed so far (each holds one or more writes).</summary>
    public long Transactions { get; private set; }

    /// <summary>
    /// Why the last commit failed (the store is lost, or another silo fenced this one), or null
    /// while writes succeed. Health reports NOT_SERVING while it is set.
    /// </summary>
    public string? Failure => Volatile.Read(ref _failure);

    /// <summary>A read found the store unreachable: health says so until a commit or a probe succeeds.</summary>
    public void ReportFailure(string failure) => Volatile.Write(ref _failure, failure);

    /// <summary>
    /// Probes the store and updates <see cref="Failure"/>: a write transaction that commits nothing,
    /// or, while the last commit failed, one that commits (a full disk lets the first kind
    /// through), so health recovers when a commit would succeed again, not before.
    /// </summary>
    public string? Probe()
    {
        var failed = Volatile.Read(ref _failedCommits);
        var failure = _store.ProbeWritable(_epochs, commit: failed != Volatile.Read(ref _recoveredCommits));
        if (failure is null)
        {
            Recovered(failed);
            // A commit that failed while this probe ran keeps its failure.
            if (Volatile.Read(ref _failedCommits) != failed)
            {
                return Failure;
            }
        }
        Volatile.Write(ref _failure, failure);
        return failure;
    }

    /// <summary>Every commit failed so far is answered for (by a commit or a committed probe); the end of a run of failures is logged.</summary>
    private void Recovered(long failed)
    {
        if (Interlocked.Exchange(ref _recoveredCommits, failed) != failed)
        {
            _logger?.LogInformation("The store takes writes again");
        }
    }

    /// <summary>
    /// Queues a write and completes with the object's new revision once it is durable. Fails with
    /// <see cref="ErrorCode.Aborted"/> if the object's revision moved, and
    /// <see cref="ErrorCode.Unavailable"/> if the store failed or the partition was lost.
    /// </summary>
    public Task<long> WriteAsync(WriteRequest write)
    {
        write.Epoch = _epochs[write.Partition];
        var pending = new Pending(write);
        if (!_queue.Writer.TryWrite(pending))
        {
            throw new ControlPlaneException(ErrorCode.Unavailable, "the silo is shutting down");
        }
        return pending.Completion.Task;
    }

    private async Task RunAsync()
    {
        var reader = _queue.Reader;
        var batch = new List<Pending>(MaxBatch);
        var requests = new List<WriteRequest>(MaxBatch);
        var outcomes = new WriteOutcome[MaxBatch];
        var changes = new Change?[MaxBatch];
        // Commit spans are roots of their own (linked to the writes), whoever created this committer.
        System.Diagnostics.Activity.Current = null;
        while (await reader.WaitToReadAsync().ConfigureAwait(false))
        {
            batch.Clear();
            requests.Clear();
            while (batch.Count < MaxBatch && reader.TryRead(out var pending))
            {
                batch.Add(pending);
                requests.Add(pending.Request);
            }
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            using var activity = StoreTelemetry.StartCommit(requests);
            try
            {
                await _store.CommitAsync(requests, outcomes, changes).ConfigureAwait(false);
                Transactions++;
                StoreTelemetry.BatchSize.Record(batch.Count);
                StoreTelemetry.CommitDuration.Record(System.Diagnostics.Stopwatch.GetElapsedTime(started).TotalSeconds);
                Stamp(requests, changes);
                Recovered(Volatile.Read(ref _failedCommits));
                Volatile.Write(ref _failure, Array.IndexOf(outcomes, WriteOutcome.Fenced, 0, batch.Count) >= 0 ? "this silo's store was fenced by another silo" : null);
            }
            catch (Exception e)
            {
                // Counted as the store's failure; each caller gets it as UNAVAILABLE.
                var failure = e as ControlPlaneException ?? new ControlPlaneException(ErrorCode.Unavailable, "the store could not commit", inner: e);
                // The first of a run of failures (every commit of the run fails its callers UNAVAILABLE) is logged.
                var first = Interlocked.Increment(ref _failedCommits) - 1 == Volatile.Read(ref _recoveredCommits);
                StoreTelemetry.CommitFailed();
                activity?.SetStatus(System.Diagnostics.ActivityStatusCode.Error, failure.Message);
                activity?.AddException(e);
                if (first)
                {
                    _logger?.LogError(e, "The store could not commit {Writes} write(s); they are answered UNAVAILABLE, and so is every write until a commit succeeds again", batch.Count);
                }
                Volatile.Write(ref _failure, failure.Message);
                foreach (var pending in batch)
                {
                    pending.Completion.TrySetException(failure);
                }
                continue;
            }
            if (_publish)
            {
                Publish(batch.Count, changes);
            }
            for (var i = 0; i < batch.Count; i++)
            {
                var completion = batch[i].Completion;
                switch (outcomes[i])
                {
                    case WriteOutcome.Committed:
                        completion.TrySetResult(changes[i]!.Revision);
                        break;
                    case WriteOutcome.Conflict:
                        completion.TrySetException(new ControlPlaneException(ErrorCode.Aborted,
                            $"{requests[i].Kind} {requests[i].Key} changed concurrently; reload and retry"));
                        break;
                    case WriteOutcome.ClaimTaken:
                        completion.TrySetException(new ClaimTakenException(requests[i].TakenBy!));
                        break;
                    case WriteOutcome.Unreferenceable or WriteOutcome.Referenced:
                        completion.TrySetException(new ReferenceException(outcomes[i] == WriteOutcome.Unreferenceable, requests[i].Reference.Kind, requests[i].Reference.Key));
                        break;
                    default:
                        completion.TrySetException(new ControlPlaneException(ErrorCode.Unavailable,
                            $"partition {requests[i].Partition} is no longer owned by this silo"));
                        break;
                }
            }
        }
    }

    /// <summary>Hands each write's trace context and the commit time to its change (for watch delivery and lag).</summary>
    private static void Stamp(List<WriteRequest> requests, Change?[] changes)
    {
        var now = System.Diagnostics.Stopwatch.GetTimestamp();
        for (var i = 0; i < requests.Count; i++)
        {
            if (changes[i] is not { } change) continue;
            change.CommittedAt = now;
            change.TraceContext = requests[i].TraceContext;
        }
    }

    private void Publish(int count, Change?[] changes)
    {
        var committed = 0;
        for (var i = 0; i < count; i++)
        {
            committed += changes[i] is null ? 0 : 1;
        }
        var published = new Change[committed];
        for (int i = 0, n = 0; i < count; i++)
        {
            if (changes[i] is { } change)
            {
                published[n++] = change;
            }
        }
        _hub.Publish(published);
    }

    /// <summary>Stops taking writes and waits until every queued one is committed.</summary>
    public void Dispose()
    {
        _queue.Writer.TryComplete();
        _loop.GetAwaiter().GetResult();
    }

    private sealed class Pending(WriteRequest request)
    {
        public WriteRequest Request { get; } = request;
        // Never run a writer's continuation on the commit thread: it could wait on a commit.
        public TaskCompletionSource<long> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
    }
}
