using ControlPlane.Grains.Convergence;
using ControlPlane.Grains.Resources;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Silo.Convergence;

/// <summary>
/// This silo's copy of the cluster's programmed-everywhere position: one long poll of the
/// convergence grain, started by the first caller and kept running, shared by every wait and
/// every watch that asked for PROGRAMMED events here. <see cref="Changed"/> is cancelled each
/// time the position moves, so a waiter wakes without polling.
/// </summary>
public sealed partial class ProgrammedPositions(IGrainFactory grains, IHostApplicationLifetime lifetime, ILogger<ProgrammedPositions> logger) : IDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromSeconds(5);
    private readonly object _lock = new();
    private readonly CancellationTokenSource _stop = CancellationTokenSource.CreateLinkedTokenSource(lifetime.ApplicationStopping);
    private ProgrammedView? _current;
    private CancellationTokenSource _changed = new();
    private TaskCompletionSource<ProgrammedView> _first = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private Task? _loop;

    /// <summary>The current position (waits for the first answer of the grain).</summary>
    public Task<ProgrammedView> CurrentAsync()
    {
        Start();
        lock (_lock) return _current is { } view ? Task.FromResult(view) : _first.Task;
    }

    /// <summary>The current position, or null until the grain first answered (never waits).</summary>
    public ProgrammedView? Current
    {
        get
        {
            Start();
            lock (_lock) return _current;
        }
    }

    /// <summary>Cancelled when the position next moves (take it before reading <see cref="CurrentAsync"/>).</summary>
    public CancellationToken Changed
    {
        get
        {
            Start();
            lock (_lock) return _changed.Token;
        }
    }

    /// <summary>
    /// Waits until every counted node has programmed <paramref name="revision"/> of
    /// <paramref name="partition"/>; false when <paramref name="cancellationToken"/> ends it first.
    /// </summary>
    public async Task<bool> WaitAsync(int partition, long revision, CancellationToken cancellationToken)
    {
        while (true)
        {
            var changed = Changed;
            var view = await CurrentAsync().WaitAsync(cancellationToken).ConfigureAwait(false);
            if (view.Everywhere[partition] >= revision) return true;
            using var either = CancellationTokenSource.CreateLinkedTokenSource(changed, cancellationToken);
            try
            {
                await Task.Delay(Timeout.Infinite, either.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
            {
            }
            catch (OperationCanceledException)
            {
                return false;
            }
        }
    }

    private void Start()
    {
        if (Volatile.Read(ref _loop) is not null) return;
        lock (_lock) _loop ??= Task.Run(RunAsync);
    }

    private async Task RunAsync()
    {
        var grain = grains.Get<IConvergenceGrain>(IConvergenceGrain.Key);
        var version = -1L;
        var failing = false;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                var view = await grain.WatchAsync(version, Poll).ConfigureAwait(false);
                if (failing)
                {
                    Log.Recovered(logger);
                    failing = false;
                }
                if (view.Version == version && _current is not null) continue;
                version = view.Version;
                CancellationTokenSource moved;
                lock (_lock)
                {
                    _current = view;
                    moved = _changed;
                    _changed = new CancellationTokenSource();
                }
                _first.TrySetResult(view);
                // Not disposed: waiters may still link to its token.
                moved.Cancel();
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                // The grain's silo went away (it is activated again elsewhere, with a new version
                // sequence): ask again from scratch.
                if (!failing) Log.Failing(logger, e.Message);
                failing = true;
                version = -1;
                await Task.Delay(TimeSpan.FromMilliseconds(500)).ConfigureAwait(false);
            }
        }
    }

    public void Dispose() => _stop.Cancel();

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Following the convergence grain failed ({Reason}); retrying")]
        public static partial void Failing(ILogger logger, string reason);

        [LoggerMessage(2, LogLevel.Information, "Following the convergence grain works again")]
        public static partial void Recovered(ILogger logger);
    }
}
