using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// List + watch that survives the control plane going away: it keeps the last resume token,
/// resumes from it after a disconnect or a clean end of stream, lists again only when told the
/// token is compacted (OUT_OF_RANGE), and retries with exponential backoff and full jitter. While it
/// is disconnected the sink keeps what it has. Stopping (the token is cancelled) ends it quietly.
/// </summary>
public sealed class ResumableWatch(ControlPlaneClient client, WatchRequest request, IWatchSink sink)
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(100);

    /// <summary>The longest wait between attempts (5 s unless set).</summary>
    public TimeSpan MaxBackoff { get; init; } = TimeSpan.FromSeconds(5);

    /// <summary>Called when a connection attempt or stream fails, each time (a link's state).</summary>
    public Action<StatusCode, string>? Unreachable { get; init; }

    /// <summary>Called at the first failure of an outage only (one log line per outage).</summary>
    public Action<StatusCode, string>? Lost { get; init; }

    /// <summary>Called when the resume position was compacted and a full list follows (for logging).</summary>
    public Action<string>? Relisting { get; init; }

    /// <summary>Called when the stream delivers again after an outage (for logging).</summary>
    public Action? Reachable { get; init; }

    /// <summary>Kept up to date with the watch's state, for a health endpoint (optional).</summary>
    public WatchHealth? Health { get; init; }

    public async Task RunAsync(CancellationToken cancellationToken)
    {
        var token = string.Empty;
        var backoff = FirstBackoff;
        var lost = false;
        while (!cancellationToken.IsCancellationRequested)
        {
            var listing = token.Length == 0;
            var heard = false;
            if (listing) sink.BeginList();
            try
            {
                var watch = request.Clone();
                watch.ResumeToken = token;
                await foreach (var e in client.WatchAsync(watch, Calls.Until(cancellationToken), cancellationToken).ConfigureAwait(false))
                {
                    if (!heard)
                    {
                        // The first delivery of this stream: connected (again).
                        heard = true;
                        backoff = FirstBackoff;
                        Health?.Heard();
                        if (lost) Reachable?.Invoke();
                        lost = false;
                    }
                    if (e.Type == EventType.Bookmark)
                    {
                        token = e.ResumeToken;
                        if (e.InitialEventsEnd)
                        {
                            Health?.Synced();
                            sink.EndList();
                            listing = false;
                        }
                        if (!listing) sink.Progress(token);
                        continue;
                    }
                    if (e.Type == EventType.Programmed)
                    {
                        sink.Programmed(e);
                        continue;
                    }
                    sink.Apply(e);
                    if (e.ResumeToken.Length > 0) token = e.ResumeToken;
                    if (!listing)
                    {
                        sink.Changed();
                        sink.Progress(token);
                    }
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange)
            {
                Relisting?.Invoke(e.Status.Detail);
                token = string.Empty;
            }
            catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException) when (cancellationToken.IsCancellationRequested)
            {
                return;
            }
            catch (RpcException e)
            {
                Health?.Lost($"the control plane is unreachable ({e.StatusCode}: {e.Status.Detail})");
                Unreachable?.Invoke(e.StatusCode, e.Status.Detail);
                if (!lost) Lost?.Invoke(e.StatusCode, e.Status.Detail);
                lost = true;
            }
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * backoff.TotalMilliseconds), cancellationToken).ConfigureAwait(false);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            backoff = TimeSpan.FromTicks(Math.Min(MaxBackoff.Ticks, backoff.Ticks * 2));
        }
    }
}
