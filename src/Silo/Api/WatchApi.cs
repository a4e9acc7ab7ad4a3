using System.Text;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using ControlPlane.Runtime.Changes;
using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Grains;
using ControlPlane.Runtime.Storage;
using Google.Protobuf;

namespace ControlPlane.Silo.Api;

/// <summary>
/// controlplane.v1.Watch/Watch: Kubernetes list/watch semantics over the change feed. Each
/// change is encoded once (shared by every watcher) and each watcher appends only its own
/// resume token. Ends with OK when the silo shuts down; the client then resumes elsewhere or later.
/// </summary>
public sealed class WatchApi(GrainRuntime runtime, TimeSpan defaultBookmarkInterval, CancellationToken shutdown)
{
    public const string Method = "/controlplane.v1.Watch/Watch";

    private static readonly HashSet<string> NetworkScoped = [ResourceKinds.Endpoint.Name, ResourceKinds.Service.Name, ResourceKinds.ServiceEndpoints.Name];

    public void Map(GrpcServer server) => server.AddServerStreaming(Method, WatchRequest.Parser, WatchAsync);

    private async Task WatchAsync(WatchRequest request, ServerStream stream, ServerCallContext call)
    {
        var filter = FilterOf(request);
        var interval = request.BookmarkIntervalSeconds == 0 ? defaultBookmarkInterval : TimeSpan.FromSeconds(request.BookmarkIntervalSeconds);
        var snapshot = request.ResumeToken.Length == 0;
        using var feed = snapshot
            ? ChangeFeed.FromSnapshot(runtime.Store, runtime.Hub, filter)
            : ChangeFeed.Resume(runtime.Store, runtime.Hub, filter, ResumeToken.Decode(request.ResumeToken, runtime.Partitions.Count));
        using var cancellation = CancellationTokenSource.CreateLinkedTokenSource(call.CancellationToken, shutdown);
        var tail = new byte[3 + ResumeToken.MaxEncodedLength(runtime.Partitions.Count)];
        try
        {
            while (true)
            {
                var item = await feed.NextAsync(interval, cancellation.Token).ConfigureAwait(false);
                switch (item.Type)
                {
                    case FeedItemType.Change:
                        // Write every change that is ready now, then flush once.
                        do
                        {
                            var change = item.Change!;
                            var head = ResourceKinds.Of(change.Kind).EncodeEventHead(change, EventTypeOf(change.Type));
                            // Objects of the initial snapshot carry no token: resuming mid-snapshot would skip the rest.
                            var length = snapshot ? 0 : EncodeToken(tail, feed.Position);
                            await stream.WriteRawAsync(head, tail.AsSpan(0, length), flush: false).ConfigureAwait(false);
                        }
                        while (feed.TryNext(out item) && item.Type == FeedItemType.Change);
                        await stream.FlushAsync().ConfigureAwait(false);
                        if (item.Type == FeedItemType.InitialEventsEnd)
                        {
                            goto case FeedItemType.InitialEventsEnd;
                        }
                        break;
                    case FeedItemType.InitialEventsEnd:
                        snapshot = false;
                        await stream.WriteAsync(Bookmark(feed, initialEventsEnd: true)).ConfigureAwait(false);
                        break;
                    default:
                        if (!snapshot)
                        {
                            await stream.WriteAsync(Bookmark(feed, initialEventsEnd: false)).ConfigureAwait(false);
                        }
                        break;
                }
            }
        }
        catch (OperationCanceledException) when (shutdown.IsCancellationRequested || !call.CancellationToken.IsCancellationRequested)
        {
            // The silo is stopping (or the change stream closed): end the stream cleanly.
        }
    }

    private FeedFilter FilterOf(WatchRequest request)
    {
        var kinds = new List<string>();
        for (var i = 0; i < request.Kinds.Count; i++)
        {
            kinds.Add((ResourceKinds.Of(request.Kinds[i]) ?? throw ControlPlaneException.Invalid($"kinds[{i}]", $"{request.Kinds[i]} is not a watchable kind")).Name);
        }
        if (kinds.Count == 0)
        {
            kinds.AddRange(ResourceKinds.All.Select(k => k.Name));
        }
        string? ns = null;
        if (request.Namespace.Length > 0)
        {
            if (Grains.Validation.Names.Dns1123LabelError(request.Namespace) is { } error) throw ControlPlaneException.Invalid("namespace", error);
            ns = request.Namespace;
            kinds.RemoveAll(k => !ResourceKinds.Of(k).Namespaced);
        }
        Func<Change, bool>? predicate = null;
        if (request.Network.Length > 0)
        {
            if (Grains.Validation.Names.Dns1123LabelError(request.Network) is { } error) throw ControlPlaneException.Invalid("network", error);
            var network = request.Network;
            predicate = change => change.Kind == ResourceKinds.Network.Name ? change.Key == network
                : !NetworkScoped.Contains(change.Kind) || change.Index == network;
        }
        return new FeedFilter(kinds, ns, predicate);
    }

    private static WatchEvent Bookmark(ChangeFeed feed, bool initialEventsEnd) => new()
    {
        Type = EventType.Bookmark,
        InitialEventsEnd = initialEventsEnd,
        ResumeToken = ResumeToken.Encode(feed.Position),
    };

    private static EventType EventTypeOf(ChangeType type) => type switch
    {
        ChangeType.Added => EventType.Added,
        ChangeType.Modified => EventType.Modified,
        _ => EventType.Deleted,
    };

    /// <summary>
    /// Writes field 15 (resume_token) of a WatchEvent straight into <paramref name="buffer"/>:
    /// tag, length and the token's ASCII. Returns the bytes written. Allocation-free.
    /// </summary>
    private static int EncodeToken(byte[] buffer, ReadOnlySpan<long> position)
    {
        const byte tag = (WatchEvent.ResumeTokenFieldNumber << 3) | (byte)WireFormat.WireType.LengthDelimited;
        var length = ResumeToken.EncodeUtf8(position, buffer.AsSpan(3));
        buffer[0] = tag;
        if (length < 0x80)
        {
            buffer[1] = (byte)length;
            buffer.AsSpan(3, length).CopyTo(buffer.AsSpan(2));
            return 2 + length;
        }
        buffer[1] = (byte)(length | 0x80);
        buffer[2] = (byte)(length >> 7);
        return 3 + length;
    }
}
