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
    private readonly Dictionary<string, Dictionary<string, EndpointView>> _endpointsByNamespace = [];
    // Label keys and values, networks and nodes repeat across endpoints: one string each.
    private readonly Dictionary<string, string> _strings = new(StringComparer.Ordinal);
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
                endpoints.TryGetValue(change.Key, out var was);
                EndpointView? now = null;
                if (deleted) endpoints.Remove(change.Key);
                else endpoints[change.Key] = now = View(Endpoint.Parser.ParseFrom(change.Data));
                if (_servicesByScope.TryGetValue((change.Namespace, change.Index), out var scope))
                {
                    // Only the services whose selector took the endpoint before or takes it now:
                    // a namespace of thousands of endpoints and dozens of services would otherwise
                    // recompute every service's set on every change.
                    foreach (var key in scope)
                    {
                        var selector = _services[key].Spec.Selector;
                        if ((was is not null && Selectors.MatchesServiceSelector(selector, was.Labels)) || (now is not null && Selectors.MatchesServiceSelector(selector, now.Labels)))
                        {
                            _dirty.Add(key);
                        }
                    }
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
            var grain = Grains.Get<IServiceEndpointsGrain>(key);
            if (wanted is null)
            {
                if (current is not null) writes.Add(grain.DeleteAsync());
            }
            else if (current is null || !SameContent(current, wanted))
            {
                if (wanted.Omitted != (current?.Omitted ?? 0) && wanted.Omitted > 0)
                {
                    Logger.LogWarning("The endpoint set of service {Service} leaves out {Omitted} of its endpoints to stay within {Bytes} bytes",
                        key, wanted.Omitted, ObjectSize.MaxObjectBytes);
                }
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
        // Only the ports the service reaches by name: the others are no use to the set's readers
        // (agents, DNS, exports), and an endpoint may have many.
        var targets = service.Spec.Ports.Where(p => p.TargetCase == ServicePort.TargetOneofCase.TargetPortName)
            .Select(p => p.TargetPortName).ToHashSet(StringComparer.Ordinal);
        var selected = new List<EndpointAddress>();
        // Selected first, then sorted: a namespace may hold many more endpoints than one service selects.
        var matching = EndpointsOf(service.Metadata.Namespace).Values
            .Where(e => e.Network == service.Spec.Network && Selectors.MatchesServiceSelector(service.Spec.Selector, e.Labels))
            .OrderBy(e => e.Name, StringComparer.Ordinal);
        foreach (var endpoint in matching)
        {
            var address = new EndpointAddress
            {
                Name = endpoint.Name,
                Node = endpoint.Node,
                Ready = endpoint.Ready,
                Hostname = endpoint.Hostname,
                Subdomain = endpoint.Subdomain,
            };
            address.Ips.Add(endpoint.Ips);
            foreach (var port in endpoint.Ports)
            {
                if (targets.Contains(port.Name)) address.Ports.Add(port);
            }
            selected.Add(address);
        }
        return Bounded(set, selected);
    }

    /// <summary>
    /// <paramref name="set"/> with as many of <paramref name="selected"/> (in name order) as keep
    /// it within <see cref="ObjectSize.MaxObjectBytes"/>, like every object, so that each List page
    /// and watch event stays under stock clients' 4 MiB: ready endpoints first, then not-ready
    /// ones, each group in name order; <see cref="ServiceEndpoints.Omitted"/> counts the rest.
    /// </summary>
    private static ServiceEndpoints Bounded(ServiceEndpoints set, List<EndpointAddress> selected)
    {
        var budget = ObjectSize.Budget(set);
        if (ObjectSize.Fitting(selected, budget).Count == selected.Count)
        {
            set.Endpoints.Add(selected);
            return set;
        }
        var readyFirst = selected.Where(a => a.Ready).Concat(selected.Where(a => !a.Ready)).ToList();
        var (count, _) = ObjectSize.Fitting(readyFirst, budget);
        set.Endpoints.Add(readyFirst.Take(count).OrderBy(a => a.Name, StringComparer.Ordinal));
        set.Omitted = (uint)(selected.Count - count);
        return set;
    }

    /// <summary>What a set needs of an endpoint, with repeated strings shared: the cache holds every endpoint.</summary>
    private EndpointView View(Endpoint endpoint) => new(
        endpoint.Metadata.Name,
        Shared(endpoint.Spec.Network),
        Shared(endpoint.Spec.Node),
        endpoint.Status.EffectiveReady,
        endpoint.Spec.Hostname.Length == 0 ? string.Empty : endpoint.Spec.Hostname,
        endpoint.Spec.Subdomain.Length == 0 ? string.Empty : Shared(endpoint.Spec.Subdomain),
        [.. endpoint.Status.Ips],
        [.. endpoint.Spec.Ports],
        [.. endpoint.Metadata.Labels.Select(l => KeyValuePair.Create(Shared(l.Key), Shared(l.Value)))]);

    private string Shared(string value)
    {
        if (_strings.TryGetValue(value, out var shared)) return shared;
        _strings[value] = value;
        return value;
    }

    private sealed record EndpointView(string Name, string Network, string Node, bool Ready, string Hostname, string Subdomain,
        string[] Ips, NamedPort[] Ports, KeyValuePair<string, string>[] Labels);

    private static bool SameContent(ServiceEndpoints a, ServiceEndpoints b) =>
        a.Network == b.Network && a.Omitted == b.Omitted && a.Endpoints.Equals(b.Endpoints);

    private HashSet<string> ServicesIn(string ns, string network)
    {
        if (!_servicesByScope.TryGetValue((ns, network), out var services))
        {
            _servicesByScope[(ns, network)] = services = [];
        }
        return services;
    }

    private Dictionary<string, EndpointView> EndpointsOf(string ns)
    {
        if (!_endpointsByNamespace.TryGetValue(ns, out var endpoints))
        {
            _endpointsByNamespace[ns] = endpoints = [];
        }
        return endpoints;
    }
}
