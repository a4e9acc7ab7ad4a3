using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// A watcher as a long-lived client writes it: it keeps the token of the last event it received
/// and, whenever its stream breaks, watches again from that token (through a client that moves
/// to another silo when its own goes away). It records every change it is sent.
/// </summary>
internal sealed class ResumingWatcher : IAsyncDisposable
{
    private readonly ControlPlaneClient _client;
    private readonly CancellationTokenSource _stop = new();
    private readonly Task _pump;
    private readonly List<(string Kind, string Key, long Revision)> _changes = [];
    private (int Count, TaskCompletionSource Reached)? _awaited;

    public ResumingWatcher(string addresses, string token)
    {
        _client = new ControlPlaneClient(addresses);
        _pump = Task.Run(() => PumpAsync(token));
    }

    /// <summary>Times the stream broke and the watcher resumed from its token.</summary>
    public int Resumes { get; private set; }

    /// <summary>Errors other than a silo going away (these fail the test).</summary>
    public List<string> Errors { get; } = [];

    public List<(string Kind, string Key, long Revision)> Changes
    {
        get
        {
            lock (_changes) return [.. _changes];
        }
    }

    /// <summary>Completes once the watcher has received <paramref name="count"/> changes.</summary>
    public Task ReceivedAsync(int count)
    {
        lock (_changes)
        {
            if (_changes.Count >= count) return Task.CompletedTask;
            _awaited = (count, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
            return _awaited.Value.Reached.Task;
        }
    }

    private async Task PumpAsync(string token)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await foreach (var e in _client.WatchAsync(new WatchRequest { ResumeToken = token, BookmarkIntervalSeconds = 1 }, Calls.Until(_stop.Token)))
                {
                    if (e.Type != EventType.Bookmark)
                    {
                        var kind = Api.ResourceKinds.Of(e.Kind)!;
                        var meta = MetaOf(e);
                        lock (_changes)
                        {
                            _changes.Add((kind.Name, meta.Namespace.Length > 0 ? $"{meta.Namespace}/{meta.Name}" : meta.Name, long.Parse(meta.Etag, System.Globalization.CultureInfo.InvariantCulture)));
                            if (_awaited is { } awaited && _changes.Count >= awaited.Count) awaited.Reached.TrySetResult();
                        }
                    }
                    token = e.ResumeToken;
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && !_stop.IsCancellationRequested)
            {
                // The silo went away: resume from the last token (on another silo).
            }
            catch (RpcException e) when (!_stop.IsCancellationRequested)
            {
                lock (Errors) Errors.Add($"{e.StatusCode}: {e.Status.Detail}");
            }
            catch (Exception e) when (e is OperationCanceledException or RpcException && _stop.IsCancellationRequested)
            {
                return;
            }
            if (_stop.IsCancellationRequested) return;
            Resumes++;
            // Every silo may be unreachable for a moment: back off a little before the next try.
            await Task.Delay(100).ConfigureAwait(false);
        }
    }

    private static ObjectMeta MetaOf(WatchEvent e) => e.ObjectCase switch
    {
        WatchEvent.ObjectOneofCase.Namespace => e.Namespace.Metadata,
        WatchEvent.ObjectOneofCase.Network => e.Network.Metadata,
        WatchEvent.ObjectOneofCase.Node => e.Node.Metadata,
        WatchEvent.ObjectOneofCase.Endpoint => e.Endpoint.Metadata,
        WatchEvent.ObjectOneofCase.Service => e.Service.Metadata,
        WatchEvent.ObjectOneofCase.NetworkPolicy => e.NetworkPolicy.Metadata,
        WatchEvent.ObjectOneofCase.ServiceEndpoints => e.ServiceEndpoints.Metadata,
        _ => throw new InvalidOperationException($"an event without an object: {e}"),
    };

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _pump;
        }
        catch (OperationCanceledException)
        {
        }
        _client.Dispose();
    }
}
