using System.Threading.Channels;
using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Silo.Tests;

/// <summary>Runs a watch in the background and lets a test await the events it expects.</summary>
internal sealed class WatchCollector : IAsyncDisposable
{
    private readonly Channel<WatchEvent> _events = Channel.CreateUnbounded<WatchEvent>();
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;

    public WatchCollector(ControlPlaneClient client, WatchRequest request)
    {
        _pump = Task.Run(async () =>
        {
            try
            {
                await foreach (var e in client.WatchAsync(request, Calls.Until(_stop.Token)))
                {
                    _events.Writer.TryWrite(e);
                }
                _events.Writer.TryComplete();
            }
            catch (Exception e)
            {
                _events.Writer.TryComplete(e);
            }
        });
    }

    /// <summary>Every event received so far, in order.</summary>
    public List<WatchEvent> Seen { get; } = [];

    /// <summary>Reads events until one satisfies <paramref name="predicate"/>; fails after the timeout.</summary>
    public async Task<WatchEvent> WaitForAsync(Func<WatchEvent, bool> predicate, string what, int timeoutMs = 10_000)
    {
        using var timeout = new CancellationTokenSource(timeoutMs);
        try
        {
            while (true)
            {
                var e = await _events.Reader.ReadAsync(timeout.Token);
                Seen.Add(e);
                if (predicate(e)) return e;
            }
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"no watch event within {timeoutMs} ms: {what} (saw {Seen.Count} events)");
        }
    }

    /// <summary>Waits for the end of the stream; returns the error it ended with, if any.</summary>
    public async Task<Exception?> CompletionAsync(int timeoutMs = 10_000)
    {
        using var timeout = new CancellationTokenSource(timeoutMs);
        try
        {
            while (await _events.Reader.WaitToReadAsync(timeout.Token))
            {
                Seen.Add(await _events.Reader.ReadAsync(timeout.Token));
            }
            return null;
        }
        catch (OperationCanceledException) when (timeout.IsCancellationRequested)
        {
            throw new TimeoutException($"the watch did not end within {timeoutMs} ms");
        }
        catch (Exception e)
        {
            return e;
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _pump;
        _stop.Dispose();
    }
}
