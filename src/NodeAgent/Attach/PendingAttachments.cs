using System.Collections.Concurrent;

namespace ControlPlane.NodeAgent.Attach;

/// <summary>
/// Endpoints this agent has just wired whose creation the watch has not delivered yet. The
/// reconciler must not sweep their interfaces in that window; once the view holds an endpoint it
/// leaves this set, and from then on the view alone decides. Apart from that, the interfaces an
/// attach is wiring at this moment (<see cref="Wiring"/>): the reconciler leaves their host ends to
/// the attach, which may still be making them when the view already holds the endpoint.
/// </summary>
public sealed class PendingAttachments
{
    private readonly ConcurrentDictionary<string, string> _byInterface = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, int> _wiring = new(StringComparer.Ordinal);

    /// <summary>Marks <paramref name="hostInterface"/> as being wired until the result is disposed.</summary>
    public IDisposable Wiring(string hostInterface)
    {
        _wiring.AddOrUpdate(hostInterface, 1, (_, n) => n + 1);
        return new Done(() =>
        {
            if (_wiring.AddOrUpdate(hostInterface, 0, (_, n) => n - 1) <= 0) _wiring.TryRemove(new KeyValuePair<string, int>(hostInterface, 0));
        });
    }

    /// <summary>An attach is wiring <paramref name="hostInterface"/> now.</summary>
    public bool IsWiring(string hostInterface) => _wiring.ContainsKey(hostInterface);

    private sealed class Done(Action done) : IDisposable
    {
        public void Dispose() => done();
    }

    public void Add(string hostInterface, string endpointKey) => _byInterface[hostInterface] = endpointKey;

    public void Remove(string hostInterface) => _byInterface.TryRemove(hostInterface, out _);

    /// <summary>Forgets the attachments the view now holds.</summary>
    public void Settle(IReadOnlyDictionary<string, Contracts.V1.Endpoint> endpoints)
    {
        foreach (var (hostInterface, key) in _byInterface)
        {
            if (endpoints.ContainsKey(key)) _byInterface.TryRemove(hostInterface, out _);
        }
    }

    /// <summary>
    /// Asked at the moment of deciding, not from an earlier copy: an attach registers before it
    /// creates its interface, so any interface a sweep can see is either here or in the view.
    /// </summary>
    public bool IsPending(string hostInterface) => _byInterface.ContainsKey(hostInterface);
}
