using System.Diagnostics;
using ControlPlane.Storage.Errors;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;

namespace ControlPlane.Silo.Hosting;

/// <summary>
/// Keeps a silo of a cluster from answering as a member after it may have stopped being one.
/// A silo that was paused (SIGSTOP, a stalled VM, a very long collection) past the membership
/// timeout has been declared dead and its grains live on other silos by now; the moment it
/// resumes, its in-memory grain state may be stale. So:
/// <list type="bullet">
/// <item>A thread of its own notes the time every <see cref="Tick"/>. A gap longer than
/// <see cref="PauseLimit"/> (shorter than the time the cluster needs to declare a silo dead)
/// closes the guard: calls wait, health answers NOT_SERVING.</item>
/// <item>A call checks the guard when it starts, and a read checks it again before answering:
/// a read that spanned a pause is refused with UNAVAILABLE rather than answered from memory.
/// Until the thread has run after a pause, the stale last tick itself keeps the guard closed.</item>
/// <item>The guard then reads this silo's row in the membership table. Still active: it opens.
/// Declared dead: the silo stops at once with exit code 75 (EX_TEMPFAIL). Its writes were all
/// committed before they were acknowledged, the cluster has moved its grains, and a supervisor
/// restarts it as a new silo.</item>
/// <item>Every <see cref="MembershipCheck"/> it also reads this silo's row unprompted: a row
/// gone from the table (its store lost its data: a Redis restarted empty) or marked dead means
/// the cluster no longer counts this silo, whose calls then reach other silos' old incarnations
/// while it still answers health as serving. It stops the same way, to be restarted as a new
/// silo that joins the table again.</item>
/// </list>
/// With localhost membership (one silo) nothing can take over, and the guard stays open.
/// </summary>
public sealed class MembershipGuard : IHostedService, IDisposable
{
    /// <summary>Exit code of a silo that found itself declared dead.</summary>
    public const int DeclaredDeadExitCode = 75;

    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    /// <summary>How often the guard reads this silo's membership row when nothing happened.</summary>
    public static readonly TimeSpan MembershipCheck = TimeSpan.FromSeconds(5);

    private static readonly TimeSpan CallWait = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan RetryInterval = TimeSpan.FromMilliseconds(500);

    private readonly IServiceProvider _services;
    private readonly ILogger<MembershipGuard> _log;
    private readonly CancellationTokenSource _stop = new();
    private readonly Lock _lock = new();
    private readonly long _pauseLimitTicks;
    private Thread? _thread;
    private long _lastTick = Stopwatch.GetTimestamp();
    private long _epoch;
    private string? _closed;
    private TaskCompletionSource _opened = Opened();

    public MembershipGuard(ClusterOptions options, IServiceProvider services, ILogger<MembershipGuard> log)
    {
        _services = services;
        _log = log;
        Enabled = options.Membership != "localhost";
        PauseLimit = options.ProbeTimeout;
        _pauseLimitTicks = (long)(PauseLimit.TotalSeconds * Stopwatch.Frequency);
    }

    public bool Enabled { get; }

    /// <summary>A longer gap between ticks counts as a pause.</summary>
    public TimeSpan PauseLimit { get; }

    /// <summary>Null while the silo may answer; else why not.</summary>
    public string? Reason
    {
        get
        {
            // Before the guard runs (the silo is still starting) nothing can have been paused.
            if (!Enabled || Volatile.Read(ref _thread) is null) return null;
            if (Volatile.Read(ref _closed) is { } closed) return closed;
            return Stopwatch.GetTimestamp() - Volatile.Read(ref _lastTick) > _pauseLimitTicks ? "this silo was paused; checking that it is still a cluster member" : null;
        }
    }

    /// <summary>Admits a call (waiting a little while the guard checks membership); returns the epoch to confirm a read against.</summary>
    public ValueTask<long> EnterAsync(CancellationToken cancellationToken)
    {
        var epoch = Interlocked.Read(ref _epoch);
        return Reason is null ? ValueTask.FromResult(epoch) : WaitAsync(cancellationToken);
    }

    /// <summary>Refuses the answer of a read when the silo was paused (or closed) since the read started.</summary>
    public void Confirm(long epoch)
    {
        if (Reason is { } reason) throw Unavailable(reason);
        if (Interlocked.Read(ref _epoch) != epoch) throw Unavailable("this silo was paused while answering; ask again");
    }

    public Task StartAsync(CancellationToken cancellationToken)
    {
        if (Enabled)
        {
            // The time the silo took to start is no pause.
            Volatile.Write(ref _lastTick, Stopwatch.GetTimestamp());
            var thread = new Thread(Run) { IsBackground = true, Name = "membership guard" };
            thread.Start();
            Volatile.Write(ref _thread, thread);
            _ = Task.Run(WatchMembershipAsync);
        }
        return Task.CompletedTask;
    }

    public Task StopAsync(CancellationToken cancellationToken)
    {
        _stop.Cancel();
        return Task.CompletedTask;
    }

    public void Dispose() => _stop.Cancel();

    private async ValueTask<long> WaitAsync(CancellationToken cancellationToken)
    {
        Task opened;
        lock (_lock) opened = _opened.Task;
        try
        {
            await opened.WaitAsync(CallWait, cancellationToken).ConfigureAwait(false);
        }
        catch (TimeoutException)
        {
        }
        var epoch = Interlocked.Read(ref _epoch);
        return Reason is { } reason ? throw Unavailable(reason) : epoch;
    }

    private void Run()
    {
        while (!_stop.IsCancellationRequested)
        {
            _stop.Token.WaitHandle.WaitOne(Tick);
            var now = Stopwatch.GetTimestamp();
            var gap = now - Volatile.Read(ref _lastTick);
            if (gap > _pauseLimitTicks)
            {
                // Close before the fresh tick is published: a call that sees the fresh tick sees the new epoch too.
                Close(TimeSpan.FromSeconds((double)gap / Stopwatch.Frequency));
            }
            Volatile.Write(ref _lastTick, now);
        }
    }

    private void Close(TimeSpan pause)
    {
        lock (_lock)
        {
            Interlocked.Increment(ref _epoch);
            var verifying = _closed is not null;
            _closed = $"this silo was paused for {pause.TotalSeconds:F1} s; checking that it is still a cluster member";
            if (_opened.Task.IsCompleted) _opened = Opened();
            if (verifying) return;
        }
        _log.LogWarning("Paused for {Seconds:F1} s (longer than {Limit:F1} s): calls wait until membership confirms this silo is still active", pause.TotalSeconds, PauseLimit.TotalSeconds);
        _ = Task.Run(() => VerifyAsync(pause));
    }

    private async Task VerifyAsync(TimeSpan pause)
    {
        while (!_stop.IsCancellationRequested)
        {
            SiloStatus? status;
            try
            {
                status = (await ReadOwnRowAsync().ConfigureAwait(false))?.Status;
            }
            catch (Exception e) when (!_stop.IsCancellationRequested)
            {
                _log.LogWarning("Cannot read the membership table yet ({Reason}); calls keep waiting", e.Message);
                await Task.Delay(RetryInterval, _stop.Token).ConfigureAwait(false);
                continue;
            }
            if (status == SiloStatus.Active)
            {
                lock (_lock)
                {
                    _closed = null;
                    _opened.TrySetResult();
                }
                _log.LogInformation("Still an active cluster member after a pause of {Seconds:F1} s: serving again", pause.TotalSeconds);
                return;
            }
            StopNow($"the cluster declared this silo {status?.ToString() ?? "unknown"} while it was paused for {pause.TotalSeconds:F1} s; its grains live on other silos now. Stopping (exit code {DeclaredDeadExitCode}); restart it to rejoin as a new silo");
        }
    }

    /// <summary>
    /// Reads this silo's row every <see cref="MembershipCheck"/>: once it has been seen active,
    /// a missing row or a dead one stops the silo, and so does a Redis table that is gone as a
    /// whole. A table that cannot be read (Redis unreachable) is Orleans' own concern (it keeps
    /// the silo's view until it can), and a row not yet written or one of a silo that is joining
    /// or leaving is left alone.
    /// </summary>
    private async Task WatchMembershipAsync()
    {
        var seen = false;
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(MembershipCheck, _stop.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            // After a pause the guard is checking already.
            if (Volatile.Read(ref _closed) is not null) continue;
            MembershipEntry? entry;
            try
            {
                entry = await ReadOwnRowAsync().ConfigureAwait(false);
            }
            catch (Orleans.Clustering.Redis.RedisClusteringException) when (seen && !_stop.IsCancellationRequested)
            {
                // The Redis table itself is gone (its version with it: Redis restarted without its
                // data). Orleans can then neither read nor write membership, so no failed silo is
                // ever declared dead and calls to its grains fail for good: stop, to rejoin anew.
                StopNow($"the membership table is gone from Redis (did it restart without its data?), so no silo can be declared dead any more. Stopping (exit code {DeclaredDeadExitCode}); restart it to rejoin as a new silo");
                return;
            }
            catch (Exception) when (!_stop.IsCancellationRequested)
            {
                continue;
            }
            if (_stop.IsCancellationRequested) return;
            switch (entry?.Status)
            {
                case SiloStatus.Active:
                    if (!seen) _log.LogInformation("This silo is an active cluster member; its membership row is read every {Seconds:F0} s", MembershipCheck.TotalSeconds);
                    seen = true;
                    break;
                case null when seen:
                    StopNow($"this silo's row is gone from the membership table (did its store lose its data?), so the cluster no longer counts it as a member. Stopping (exit code {DeclaredDeadExitCode}); restart it to rejoin as a new silo");
                    return;
                case SiloStatus.Dead:
                    StopNow($"the cluster declared this silo dead; its grains live on other silos now. Stopping (exit code {DeclaredDeadExitCode}); restart it to rejoin as a new silo");
                    return;
            }
        }
    }

    /// <summary>This silo's row in the membership table, or null when the table has none.</summary>
    private async Task<MembershipEntry?> ReadOwnRowAsync()
    {
        var self = _services.GetRequiredService<ILocalSiloDetails>().SiloAddress;
        var rows = await _services.GetRequiredService<IMembershipTable>().ReadRowAsync(self, _stop.Token).ConfigureAwait(false);
        return rows.Members.FirstOrDefault(m => m.Item1.SiloAddress.Equals(self))?.Item1;
    }

    /// <summary>
    /// Ends the process at once: an orderly shutdown would ask Orleans to leave a membership
    /// that already counts this silo dead (which Orleans answers by failing fast), while nothing
    /// here is left to save: every acknowledged write is committed.
    /// </summary>
    private void StopNow(string reason) => ProcessEnd.Now(_log, reason, DeclaredDeadExitCode);

    private static TaskCompletionSource Opened() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    private static ControlPlaneException Unavailable(string reason) => new(ErrorCode.Unavailable, reason);
}
