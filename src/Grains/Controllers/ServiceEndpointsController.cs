using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Grains.Validation;
using ControlPlane.Storage.GrainStorage;
using ControlPlane.Storage;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Grains.Controllers;

/// <summary>
/// Derives each service's endpoint set from its selector (like Kubernetes' EndpointSlice
/// controller): the endpoints of the service's namespace and network whose labels match, with
/// their effective readiness. A set is written only when it changes, and sets of services that
/// no longer exist are deleted.
/// </summary>
public sealed class ServiceEndpointsController(DurableStore store, IGrainFactory grains, ILogger<ServiceEndpointsController> logger)
    : FeedController(store, grains, logger)
{
    private readonly Dictionary<string, Service> _services = [];
    // Services by (namespace, network): an endpoint change touches only the services that could select it.
    private readonly Dictionary<(string Namespace, string Network), HashSet<string>> _servicesByScope = [];
    private readonly Dictionary<string, Dictionary<string, Endpoint>> _endpointsByNamespace = [];
    private readonly Dictionary<string, ServiceEndpoints> _written = [];
    private readonly HashSet<string> _dirty = [];

    protected override IReadOnlyList<string> Kinds { get; } = [Resources.Kinds.Service, Resources.Kinds.Endpoint, Resources.Kinds.ServiceEndpoints];

    protected override TimeSpan Resync => Timeout.InfiniteTimeSpan;

    protected override void Reset()
    {
        _services.Clear();
        _servicesByScope.Clear();
        _endpointsByNamespace.Clear();
        _written.Clear();
        _dirty.Clear();
    }

    protected override void Apply(Change change)
    {
        var deleted = change.Type == ChangeType.Deleted;
        switch (change.Kind)
        {
            case Resources.Kinds.Service:
                if (_services.Remove(change.Key, out var previous))
                {
                    ServicesIn(previous.Metadata.Namespace, previous.Spec.Network).Remove(change.Key);
                }
                if (!deleted)
                {
                    var service = Service.Parser.ParseFrom(change.Data);
                    _services[change.Key] = service;
                    ServicesIn(service.Metadata.Namespace, service.Spec.Network).Add(change.Key);
                }
                _dirty.Add(change.Key);
                break;
            case Resources.Kinds.Endpoint:
                var endpoints = EndpointsOf(change.Namespace);
                if (deleted) endpoints.Remove(change.Key);
                else endpoints[change.Key] = Endpoint.Parser.ParseFrom(change.Data);
                if (_servicesByScope.TryGetValue((change.Namespace, change.Index), out var affected))
                {
                    _dirty.UnionWith(affected);
                }
                break;
            case Resources.Kinds.ServiceEndpoints:
                if (deleted) _written.Remove(change.Key);
                else _written[change.Key] = ServiceEndpoints.Parser.ParseFrom(change.Data);
                _dirty.Add(change.Key);
                break;
        }
    }

    protected override async Task ReconcileAsync(CancellationToken cancellationToken)
    {
        var writes = new List<Task>();
        foreach (var key in _dirty)
        {
            var wanted = _services.TryGetValue(key, out var service) ? Compute(service) : null;
            _written.TryGetValue(key, out var current);
            var grain = Grains.GetGrain<IServiceEndpointsGrain>(key);
            if (wanted is null)
            {
                if (current is not null) writes.Add(grain.DeleteAsync());
            }
            else if (current is null || !SameContent(current, wanted))
            {
                writes.Add(grain.PutAsync(wanted));
            }
        }
        _dirty.Clear();
        await Task.WhenAll(writes).ConfigureAwait(false);
    }

    private ServiceEndpoints? Compute(Service service)
    {
        if (service.Spec.Type == ServiceType.ExternalName)
        {
            return null;
        }
        var set = new ServiceEndpoints
        {
            Metadata = new ObjectMeta { Name = service.Metadata.Name, Namespace = service.Metadata.Namespace },
            Network = service.Spec.Network,
        };
        foreach (var endpoint in EndpointsOf(service.Metadata.Namespace).Values.OrderBy(e => e.Metadata.Name, StringComparer.Ordinal))
        {
            if (endpoint.Spec.Network != service.Spec.Network || !Selectors.MatchesServiceSelector(service.Spec.Selector, endpoint.Metadata.Labels))
            {
                continue;
            }
            var address = new EndpointAddress
            {
                Name = endpoint.Metadata.Name,
                Node = endpoint.Spec.Node,
                Ready = endpoint.Status.EffectiveReady,
                Hostname = endpoint.Spec.Hostname,
                Subdomain = endpoint.Spec.Subdomain,
            };
            address.Ips.Add(endpoint.Status.Ips);
            address.Ports.Add(endpoint.Spec.Ports);
            set.Endpoints.Add(address);
        }
        return set;
    }

    private static bool SameContent(ServiceEndpoints a, ServiceEndpoints b) =>
        a.Network == b.Network && a.Endpoints.Equals(b.Endpoints);

    private HashSet<string> ServicesIn(string ns, string network)
    {
        if (!_servicesByScope.TryGetValue((ns, network), out var services))
        {
            _servicesByScope[(ns, network)] = services = [];
        }
        return services;
    }

    private Dictionary<string, Endpoint> EndpointsOf(string ns)
    {
        if (!_endpointsByNamespace.TryGetValue(ns, out var endpoints))
        {
            _endpointsByNamespace[ns] = endpoints = [];
        }
        return endpoints;
    }
}
