using ControlPlane.Storage.Errors;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Storage.Changes;

/// <summary>
/// Feeds the change hub of a silo that shares its store with other silos: reads the change log
/// after its position whenever a writer may have committed (or once a second), and publishes what
/// it finds in commit order (<see cref="ChangeRange.InCommitOrder"/>). Every silo thereby sees every change, its own
/// included, and serves List and Watch for every object.
/// </summary>
public sealed partial class ChangeTailer : IDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(1);
    private readonly IGrainStore _store;
    private readonly ISharedLog _log;
    private readonly ChangeHub _hub;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _loop;
    private long[] _position;

    public ChangeTailer(IGrainStore store, ISharedLog log, ChangeHub hub, long[] position, ILogger logger)
    {
        _store = store;
        _log = log;
        _hub = hub;
        _logger = logger;
        _position = (long[])position.Clone();
        _loop = Task.Run(RunAsync);
    }

    private async Task RunAsync()
    {
        var failing = false;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await _log.WaitForChangesAsync(Poll, _stop.Token).ConfigureAwait(false);
                ChangeRange range;
                do
                {
                    // A silo far behind catches up in the feeds' bounded pages.
                    range = await _store.ReadChangesAsync(_position, ChangeFeed.PageLimit).ConfigureAwait(false);
                    // In order, at most a page's worth per batch: a batch larger than a watcher's
                    // queue would send every watcher to the log.
                    foreach (var chunk in range.Changes.Chunk(ChangeFeed.PageLimit))
                    {
                        _hub.Publish(chunk);
                    }
                    _position = range.Through;
                }
                while (!range.Complete);
                if (failing)
                {
                    Log.Recovered(_logger);
                    failing = false;
                }
            }
            catch (OperationCanceledException) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (ControlPlaneException e) when (e.Code == ErrorCode.RevisionCompacted)
            {
                // This silo fell further behind than the log reaches: its watchers missed changes
                // and must resume (or list again) by themselves; it starts again from the heads.
                Log.Compacted(_logger, e.Message);
                _hub.OverflowAll();
                _position = (await _store.ListAsync([], null, null, 0).ConfigureAwait(false)).Heads;
            }
            catch (ControlPlaneException e)
            {
                if (!failing) Log.Failing(_logger, e.Message);
                failing = true;
            }
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        try
        {
            _loop.Wait(TimeSpan.FromSeconds(5));
        }
        catch (AggregateException)
        {
            // Already logged.
        }
        _stop.Dispose();
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Reading the shared change log failed ({Reason}); watches here pause until it works again")]
        public static partial void Failing(ILogger logger, string reason);

        [LoggerMessage(2, LogLevel.Information, "Reading the shared change log works again")]
        public static partial void Recovered(ILogger logger);

        [LoggerMessage(3, LogLevel.Warning, "This silo fell behind the compacted change log ({Reason}); its watches resume from their own positions")]
        public static partial void Compacted(ILogger logger, string reason);
    }
}
