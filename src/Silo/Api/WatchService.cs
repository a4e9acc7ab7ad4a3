using ControlPlane.Contracts.Naming;
using ControlPlane.Contracts.V1;
using ControlPlane.Storage;
using ControlPlane.Storage.Changes;
using System.Buffers;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;
using Google.Protobuf;
using Grpc.Core;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.Silo.Api;

/// <summary>
/// controlplane.v1.Watch/Watch: Kubernetes list/watch semantics over the change feed. The wire is
/// the generated service's (a stream of WatchEvent), but the method is bound by hand with a
/// marshaller of already-encoded events: each change is encoded once (cached on the change,
/// shared by every watcher) and each watcher appends only its own resume token, written straight
/// into the response without allocating. Events ready together leave in one flush. Ends with OK
/// when the silo shuts down; the client then resumes elsewhere or later.
/// </summary>
public sealed class WatchService(DurableStore store, Hosting.SiloOptions options, IHostApplicationLifetime lifetime, Convergence.ProgrammedPositions positions) : WatchServiceBase
{
    /// <summary>The longest period between bookmarks a watch may ask for: bookmarks are how a client knows the stream is alive.</summary>
    public const uint MaxBookmarkSeconds = 3600;

    /// <summary>In a run of changes ready at once, every this many are flushed.</summary>
    private const int FlushEvery = 256;

    private static readonly HashSet<string> NetworkScoped = [ResourceKinds.Endpoint.Name, ResourceKinds.Service.Name, ResourceKinds.ServiceEndpoints.Name];

    public override async Task Watch(WatchRequest request, IServerStreamWriter<EncodedEvent> stream, ServerCallContext call)
    {
        var filter = FilterOf(request);
        if (request.BookmarkIntervalSeconds > MaxBookmarkSeconds)
            throw ControlPlaneException.Invalid("bookmark_interval_seconds", $"{request.BookmarkIntervalSeconds} is more than {MaxBookmarkSeconds} (an hour)");
        var interval = request.BookmarkIntervalSeconds == 0 ? options.DefaultBookmarkInterval : TimeSpan.FromSeconds(request.BookmarkIntervalSeconds);
        var snapshot = request.ResumeToken.Length == 0;
        using var feed = snapshot
            ? await ChangeFeed.FromSnapshotAsync(store.Store, store.Hub, filter, options.WatchBuffer).ConfigureAwait(false)
            : await ChangeFeed.ResumeAsync(store.Store, store.Hub, filter, ResumeToken.Decode(request.ResumeToken, store.Partitions.StoreId, store.Partitions.Count), options.WatchBuffer).ConfigureAwait(false);
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(call.CancellationToken, lifetime.ApplicationStopping);
        var message = new EncodedEvent(store.Partitions.StoreId, ResumeToken.MaxEncodedLength(store.Partitions.Count));
        var buffered = new WriteOptions(WriteFlags.BufferHint);
        var programmed = request.ProgrammedEvents ? new ProgrammedEvents(store.Partitions.Count) : null;
        // A resumed stream that has nothing to send sends a progress bookmark at once, not one
        // interval later: a client that comes back after an outage in which nothing changed (a
        // silo restart) learns at once that it is connected and current, where it heard nothing
        // for up to the interval before. One with changes to send starts with them, as always.
        var idle = snapshot ? interval : TimeSpan.Zero;
        Telemetry.SiloTelemetry.StreamOpened();
        try
        {
            while (true)
            {
                FeedItem item;
                if (programmed is { Waiting: > 0 })
                {
                    // Send what is programmed everywhere now, then wait for a change or for the position to move.
                    var moved = positions.Changed;
                    if (positions.Current is { } view)
                    {
                        stream.WriteOptions = null;
                        await programmed.SendAsync(view.Everywhere, message, stream).ConfigureAwait(false);
                    }
                    using var either = CancellationTokenSource.CreateLinkedTokenSource(cancellation.Token, moved);
                    try
                    {
                        item = await feed.NextAsync(idle, programmed.Waiting > 0 ? either.Token : cancellation.Token).ConfigureAwait(false);
                    }
                    catch (OperationCanceledException) when (moved.IsCancellationRequested && !cancellation.IsCancellationRequested)
                    {
                        continue;
                    }
                }
                else
                {
                    item = await feed.NextAsync(idle, cancellation.Token).ConfigureAwait(false);
                }
                idle = interval;
                switch (item.Type)
                {
                    case FeedItemType.Change:
                        // Write every change that is ready now; the last one flushes, and so does
                        // every FlushEvery-th of a long run (a page read back from the log), so
                        // a catching-up watcher gets its first events while the rest are written.
                        for (var written = 1; ; written++)
                        {
                            var change = item.Change!;
                            programmed?.Delivered(change);
                            // Objects of the initial snapshot carry no token: resuming mid-snapshot would skip the rest.
                            message.Set(ResourceKinds.Of(change.Kind).EncodeEventHead(change, EventTypeOf(change.Type)), snapshot ? default : feed.Position);
                            using var delivery = Deliver(change, message);
                            var more = feed.TryNext(out item) && item.Type == FeedItemType.Change;
                            stream.WriteOptions = (more && written % FlushEvery != 0) || item.Type == FeedItemType.InitialEventsEnd ? buffered : null;
                            await stream.WriteAsync(message).ConfigureAwait(false);
                            if (!more)
                            {
                                break;
                            }
                        }
                        if (item.Type == FeedItemType.InitialEventsEnd)
                        {
                            goto case FeedItemType.InitialEventsEnd;
                        }
                        break;
                    case FeedItemType.InitialEventsEnd:
                        snapshot = false;
                        stream.WriteOptions = null;
                        await stream.WriteAsync(message.Set(Bookmark(feed, initialEventsEnd: true))).ConfigureAwait(false);
                        break;
                    default:
                        if (!snapshot)
                        {
                            stream.WriteOptions = null;
                            await stream.WriteAsync(message.Set(Bookmark(feed, initialEventsEnd: false))).ConfigureAwait(false);
                        }
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (lifetime.ApplicationStopping.IsCancellationRequested || !call.CancellationToken.IsCancellationRequested)
        {
            // The silo is stopping (or the change stream closed): end the stream cleanly.
        }
        catch (InvalidOperationException) when (call.CancellationToken.IsCancellationRequested)
        {
            // The client went away between reading the next change and writing it (Grpc.AspNetCore
            // refuses a write to a completed request): nobody is left to tell.
        }
        finally
        {
            Telemetry.SiloTelemetry.StreamClosed();
        }
    }

    /// <summary>
    /// Records the change's commit → send lag and, for a traced write, adds its traceparent to the
    /// event: a delivery span's (child of the write) when a tracer listens here, else the write's own.
    /// </summary>
    private static System.Diagnostics.Activity? Deliver(Change change, EncodedEvent message)
    {
        if (change.CommittedAt != 0)
        {
            Telemetry.SiloTelemetry.WatchLag.Record(System.Diagnostics.Stopwatch.GetElapsedTime(change.CommittedAt).TotalSeconds);
        }
        if (change.TraceContext == default) return null;
        var activity = Telemetry.SiloTelemetry.Watch.StartActivity("watch.deliver", System.Diagnostics.ActivityKind.Producer, change.TraceContext);
        activity?.SetTag("controlplane.kind", change.Kind);
        activity?.SetTag("controlplane.key", change.Key);
        message.SetTrace(activity?.Context ?? change.TraceContext);
        return activity;
    }

    /// <summary>
    /// The objects a stream delivered that some counted node has not programmed yet, per partition
    /// in revision order; only an object's newest delivered revision is announced.
    /// </summary>
    private sealed class ProgrammedEvents(int partitions)
    {
        private readonly PriorityQueue<(IResourceKind Kind, string Key), long>[] _queues =
            [.. Enumerable.Range(0, partitions).Select(_ => new PriorityQueue<(IResourceKind, string), long>())];
        private readonly Dictionary<(string Kind, string Key), long> _newest = [];

        public int Waiting => _newest.Count;

        public void Delivered(Change change)
        {
            var kind = ResourceKinds.Of(change.Kind);
            if (!kind.Programmable) return;
            if (change.Type == ChangeType.Deleted)
            {
                _newest.Remove((change.Kind, change.Key));
                return;
            }
            _newest[(change.Kind, change.Key)] = change.Revision;
            _queues[change.Partition].Enqueue((kind, change.Key), change.Revision);
        }

        public async Task SendAsync(long[] everywhere, EncodedEvent message, IServerStreamWriter<EncodedEvent> stream)
        {
            for (var p = 0; p < _queues.Length; p++)
            {
                while (_queues[p].TryPeek(out var entry, out var revision) && revision <= everywhere[p])
                {
                    _queues[p].Dequeue();
                    if (_newest.TryGetValue((entry.Kind.Name, entry.Key), out var newest) && newest == revision)
                    {
                        _newest.Remove((entry.Kind.Name, entry.Key));
                        await stream.WriteAsync(message.Set(entry.Kind.EncodeProgrammed(entry.Key, revision))).ConfigureAwait(false);
                    }
                }
            }
        }
    }

    private static FeedFilter FilterOf(WatchRequest request)
    {
        var kinds = new List<string>();
        for (var i = 0; i < request.Kinds.Count; i++)
        {
            var kind = (ResourceKinds.Of(request.Kinds[i]) ?? throw ControlPlaneException.Invalid($"kinds[{i}]", $"{request.Kinds[i]} is not a watchable kind")).Name;
            // A set: a kind named twice is watched once (a request may repeat one thousands of times).
            if (!kinds.Contains(kind)) kinds.Add(kind);
        }
        if (kinds.Count == 0)
        {
            kinds.AddRange(ResourceKinds.All.Select(k => k.Name));
        }
        string? ns = null;
        if (request.Namespace.Length > 0)
        {
            if (NameRules.Label(request.Namespace) is { } error) throw ControlPlaneException.Invalid("namespace", error);
            ns = request.Namespace;
            kinds.RemoveAll(k => !ResourceKinds.Of(k).Namespaced);
        }
        Func<Change, string, bool>? predicate = null;
        if (request.Network.Length > 0)
        {
            if (NameRules.Label(request.Network) is { } error) throw ControlPlaneException.Invalid("network", error);
            var network = request.Network;
            predicate = (change, index) => change.Kind == ResourceKinds.Network.Name ? change.Key == network
                : !NetworkScoped.Contains(change.Kind) || index == network;
        }
        return new FeedFilter(kinds, ns, predicate);
    }

    private byte[] Bookmark(ChangeFeed feed, bool initialEventsEnd) => new WatchEvent
    {
        Type = EventType.Bookmark,
        InitialEventsEnd = initialEventsEnd,
        ResumeToken = ResumeToken.Encode(store.Partitions.StoreId, feed.Position),
    }.ToByteArray();

    private static EventType EventTypeOf(ChangeType type) => type switch
    {
        ChangeType.Added => EventType.Added,
        ChangeType.Modified => EventType.Modified,
        _ => EventType.Deleted,
    };
}
