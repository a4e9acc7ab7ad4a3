using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Grpc;
using ControlPlane.Contracts.V1;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Sync;

/// <summary>
/// Sync: list + watch of networks, nodes and endpoints into a local view. The view is offered
/// only once the first complete list has arrived (in-sync is never faked); after a disconnect the
/// watch resumes from its last token, and lists again only when told the token is compacted. While
/// the control plane is unreachable the view, and so the data path, stays as it is.
/// </summary>
public sealed partial class WatchSync(ControlPlaneClient client, ILogger<WatchSync> logger) : BackgroundService
{
    private readonly object _lock = new();
    private Dictionary<string, Network> _networks = [];
    private Dictionary<string, Node> _nodes = [];
    private Dictionary<string, Endpoint> _endpoints = [];
    private bool _synced;

    /// <summary>Raised after the first list and after every change that follows.</summary>
    public event Action? Changed;

    /// <summary>The current view, or null before the first complete list.</summary>
    public ClusterView? Snapshot()
    {
        lock (_lock)
        {
            return _synced ? new ClusterView(new Dictionary<string, Network>(_networks), new Dictionary<string, Node>(_nodes), new Dictionary<string, Endpoint>(_endpoints)) : null;
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var token = string.Empty;
        var backoff = TimeSpan.FromMilliseconds(100);
        while (!stoppingToken.IsCancellationRequested)
        {
            var listing = token.Length == 0;
            Dictionary<string, Network> networks = listing ? [] : _networks;
            Dictionary<string, Node> nodes = listing ? [] : _nodes;
            Dictionary<string, Endpoint> endpoints = listing ? [] : _endpoints;
            try
            {
                var request = new WatchRequest { Kinds = { Kind.Network, Kind.Node, Kind.Endpoint }, ResumeToken = token, BookmarkIntervalSeconds = 5 };
                await foreach (var e in client.WatchAsync(request, new CallOptions(CancellationToken: stoppingToken)))
                {
                    backoff = TimeSpan.FromMilliseconds(100);
                    if (e.Type == EventType.Bookmark)
                    {
                        token = e.ResumeToken;
                        if (e.InitialEventsEnd)
                        {
                            lock (_lock) (_networks, _nodes, _endpoints, _synced) = (networks, nodes, endpoints, true);
                            listing = false;
                            Log.Synced(logger, networks.Count, nodes.Count, endpoints.Count);
                            Changed?.Invoke();
                        }
                        continue;
                    }
                    lock (_lock)
                    {
                        var deleted = e.Type == EventType.Deleted;
                        switch (e.ObjectCase)
                        {
                            case WatchEvent.ObjectOneofCase.Network: Apply(networks, e.Network.Metadata.Name, e.Network, deleted); break;
                            case WatchEvent.ObjectOneofCase.Node: Apply(nodes, e.Node.Metadata.Name, e.Node, deleted); break;
                            case WatchEvent.ObjectOneofCase.Endpoint: Apply(endpoints, $"{e.Endpoint.Metadata.Namespace}/{e.Endpoint.Metadata.Name}", e.Endpoint, deleted); break;
                        }
                    }
                    if (e.ResumeToken.Length > 0) token = e.ResumeToken;
                    if (!listing) Changed?.Invoke();
                }
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.OutOfRange)
            {
                token = string.Empty;
            }
            catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
            {
                Log.Unreachable(logger, e.StatusCode);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            try
            {
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * backoff.TotalMilliseconds), stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            backoff = TimeSpan.FromMilliseconds(Math.Min(5000, backoff.TotalMilliseconds * 2));
        }
    }

    private static void Apply<T>(Dictionary<string, T> map, string key, T value, bool deleted)
    {
        if (deleted) map.Remove(key);
        else map[key] = value;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "In sync: {Networks} networks, {Nodes} nodes, {Endpoints} endpoints")]
        public static partial void Synced(ILogger logger, int networks, int nodes, int endpoints);

        [LoggerMessage(2, LogLevel.Warning, "Control plane unreachable ({Status}); the data path stays as it is")]
        public static partial void Unreachable(ILogger logger, StatusCode status);
    }
}
