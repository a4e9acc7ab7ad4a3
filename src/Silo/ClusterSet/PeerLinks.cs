using ControlPlane.Contracts.V1;

namespace ControlPlane.Silo.ClusterSet;

/// <summary>This silo's links to its peers, by cluster id: kept by the ClusterSet controller, read by ClusterPeers/Get.</summary>
public sealed class PeerLinks : IDisposable
{
    private readonly Lock _lock = new();
    private Dictionary<string, PeerLink> _links = new(StringComparer.Ordinal);

    public IReadOnlyCollection<PeerLink> All
    {
        get { lock (_lock) return [.. _links.Values]; }
    }

    public PeerLink? Find(string name)
    {
        lock (_lock) return _links.GetValueOrDefault(name);
    }

    /// <summary>A link per peer: new peers get one, peers whose addresses changed a new one, deleted peers none.</summary>
    public void Sync(IEnumerable<ClusterPeer> peers, Func<ClusterPeer, PeerLink> connect)
    {
        lock (_lock)
        {
            var next = new Dictionary<string, PeerLink>(StringComparer.Ordinal);
            foreach (var peer in peers)
            {
                var name = peer.Metadata.Name;
                if (_links.Remove(name, out var link) && !link.Addresses.SequenceEqual(peer.Spec.Addresses))
                {
                    link.Dispose();
                    link = null;
                }
                next[name] = link ?? connect(peer);
            }
            foreach (var gone in _links.Values)
            {
                gone.Dispose();
            }
            _links = next;
        }
    }

    public void Dispose()
    {
        lock (_lock)
        {
            foreach (var link in _links.Values) link.Dispose();
            _links.Clear();
        }
    }
}
