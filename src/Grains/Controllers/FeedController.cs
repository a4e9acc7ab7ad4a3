using ControlPlane.Storage.Changes;
using ControlPlane.Storage.GrainStorage;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Grains.Controllers;

/// <summary>
/// Base of the controllers that derive state from the change stream (as Kubernetes controllers
/// do): list + watch the kinds they need, keep a cache, and reconcile in coalesced passes after
/// each burst of changes. Derived state is rebuilt from a fresh snapshot after every restart and
/// whenever the feed is lost; nothing is trusted from an earlier run.
/// </summary>
public abstract class FeedController(DurableStore store, IGrainFactory grains, ILogger logger)
{
    private const int MaxBurst = 1024;

    /// <summary>How soon a reconcile pass that failed (a silo went away mid-call, the store was lost) runs again.</summary>
    private static readonly TimeSpan RetryDelay = TimeSpan.FromSeconds(1);

    private int _wakeRequested;
    private CancellationTokenSource? _waiting;

    protected IGrainFactory Grains { get; } = grains;

    protected ILogger Logger { get; } = logger;

    /// <summary>
    /// Makes a reconcile pass run soon even when the change stream is quiet: for controllers that
    /// also derive state from outside the store (a peer cluster's watch).
    /// </summary>
    protected void Wake()
    {
        Volatile.Write(ref _wakeRequested, 1);
        try
        {
            Volatile.Read(ref _waiting)?.Cancel();
        }
        catch (ObjectDisposedException)
        {
            // the wait it would have ended is over
        }
    }

    protected abstract IReadOnlyList<string> Kinds { get; }

    /// <summary>Time between reconcile passes when nothing changes; <see cref="Timeout.InfiniteTimeSpan"/> for none.</summary>
    protected virtual TimeSpan Resync => TimeSpan.FromSeconds(30);

    /// <summary>True once the first snapshot has been applied.</summary>
    public bool Synced { get; private set; }

    /// <summary>Forget the cache: a new snapshot follows.</summary>
    protected abstract void Reset();

    /// <summary>Apply one change (snapshot objects arrive as additions). No I/O here.</summary>
    protected abstract void Apply(Change change);

    /// <summary>Bring derived state in line with the cache.</summary>
    protected abstract Task ReconcileAsync(CancellationToken cancellationToken);

    /// <summary>The feed's next item, or Idle when <see cref="Wake"/> was called before or during the wait.</summary>
    private async ValueTask<FeedItem> NextAsync(ChangeFeed feed, TimeSpan idle, CancellationToken cancellationToken)
    {
        if (Interlocked.Exchange(ref _wakeRequested, 0) == 1)
        {
            return new FeedItem(FeedItemType.Idle);
        }
        using var waiting = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        Volatile.Write(ref _waiting, waiting);
        try
        {
            if (Volatile.Read(ref _wakeRequested) == 1)
            {
                return new FeedItem(FeedItemType.Idle);
            }
            return await feed.NextAsync(idle, waiting.Token).ConfigureAwait(false);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested && waiting.IsCancellationRequested)
        {
            return new FeedItem(FeedItemType.Idle);
        }
        finally
        {
            Volatile.Write(ref _waiting, null);
            Interlocked.Exchange(ref _wakeRequested, 0);
        }
    }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                using var feed = await ChangeFeed.FromSnapshotAsync(store.Store, store.Hub, new FeedFilter(Kinds)).ConfigureAwait(false);
                Reset();
                var synced = false;
                var failed = false;
                while (true)
                {
                    var item = await NextAsync(feed, failed ? RetryDelay : synced ? Resync : Timeout.InfiniteTimeSpan, cancellationToken).ConfigureAwait(false);
                    var pending = 0;
                    while (item.Type == FeedItemType.Change)
                    {
                        Apply(item.Change!);
                        item = ++pending < MaxBurst
                            ? await feed.NextAsync(TimeSpan.Zero, cancellationToken).ConfigureAwait(false)
                            : new FeedItem(FeedItemType.Idle);
                    }
                    if (item.Type == FeedItemType.InitialEventsEnd)
                    {
                        synced = true;
                    }
                    if (synced)
                    {
                        // Reconciling calls grains on other silos and writes to the store: either
                        // may fail for a while. The cache stays; the pass runs again shortly.
                        try
                        {
                            await ReconcileAsync(cancellationToken).ConfigureAwait(false);
                            Synced = true;
                            failed = false;
                        }
                        catch (Exception e) when (e is not OperationCanceledException)
                        {
                            Logger.LogWarning(e, "{Controller} could not reconcile; trying again in {Delay}", GetType().Name, RetryDelay);
                            failed = true;
                        }
                    }
                }
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (OperationCanceledException)
            {
                return; // the change stream closed: the silo is stopping
            }
            catch (Exception e) when (e is ControlPlaneException or InvalidOperationException)
            {
                Logger.LogWarning(e, "{Controller} lost its feed; starting over from a snapshot", GetType().Name);
                await Task.Delay(TimeSpan.FromMilliseconds(200), cancellationToken).ConfigureAwait(false);
            }
        }
    }
}
