using System.Collections.Concurrent;
using System.Reflection;
using ControlPlane.Runtime.Changes;
using ControlPlane.Runtime.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Runtime.Grains;

/// <summary>
/// The actor runtime of one silo: grain references, activation on first call, idle
/// deactivation, turn-based dispatch, and the durable store with its group committer and change
/// hub. It owns every partition of the store it opens.
/// </summary>
public sealed class GrainRuntime : IGrainFactory, IDisposable
{
    private readonly ConcurrentDictionary<GrainId, Activation> _activations = new();
    private readonly Dictionary<Type, (string Kind, Type Implementation)> _interfaces = [];
    private readonly Dictionary<string, ObjectFactory> _factories = new(StringComparer.Ordinal);
    private readonly IServiceProvider _services;
    private readonly RuntimeOptions _options;
    private readonly ILogger<GrainRuntime> _logger;
    private readonly Timer _collector;
    private readonly Timer _compactor;
    private int _disposed;

    public GrainRuntime(IGrainStore store, RuntimeOptions options, IServiceProvider services, ILogger<GrainRuntime> logger)
    {
        Store = store;
        _options = options;
        _services = services;
        _logger = logger;
        Partitions = store.Open(options.SiloId, options.Partitions);
        Hub = new ChangeHub();
        Committer = new GroupCommitter(store, Hub, Partitions);
        var scan = TimeSpan.FromTicks(Math.Max(TimeSpan.TicksPerSecond / 10, options.IdleTimeout.Ticks / 4));
        _collector = new Timer(_ => CollectIdle(), null, scan, scan);
        _compactor = new Timer(_ => Compact(), null, options.CompactionInterval, options.CompactionInterval);
        logger.LogInformation("Runtime owns {Partitions} partitions as {Silo}", Partitions.Count, options.SiloId);
    }

    public IGrainStore Store { get; }

    public ChangeHub Hub { get; }

    public PartitionState Partitions { get; }

    internal GroupCommitter Committer { get; }

    public int ActivationCount => _activations.Count;

    /// <summary>Declares the grain class that serves an interface, under a kind name used in the store.</summary>
    public GrainRuntime Register<TInterface, TGrain>(string kind)
        where TInterface : IGrain
        where TGrain : Grain, TInterface
    {
        _interfaces.Add(typeof(TInterface), (kind, typeof(TGrain)));
        _factories[kind] = ActivatorUtilities.CreateFactory(typeof(TGrain), Type.EmptyTypes);
        return this;
    }

    public TGrain GetGrain<TGrain>(string key) where TGrain : IGrain
    {
        var (kind, _) = Lookup(typeof(TGrain));
        var proxy = DispatchProxy.Create<TGrain, GrainProxy>();
        ((GrainProxy)(object)proxy).Bind(this, new GrainId(kind, key));
        return proxy;
    }

    /// <summary>The partition a grain's changes are recorded in.</summary>
    public int PartitionOf(GrainId id) => Partitioner.PartitionOf(id, Partitions.Count);

    internal async Task<T> InvokeAsync<T>(GrainId id, Func<Grain, Task<T>> call, bool readOnly)
    {
        ObjectDisposedException.ThrowIf(Volatile.Read(ref _disposed) != 0, this);
        while (true)
        {
            var activation = _activations.GetOrAdd(id, Activate);
            if (!activation.TryAcquire())
            {
                // Deactivated between lookup and acquire: it is being removed; take a new one.
                _activations.TryRemove(new KeyValuePair<GrainId, Activation>(id, activation));
                continue;
            }
            try
            {
                return await activation.InvokeAsync(call, readOnly).ConfigureAwait(false);
            }
            finally
            {
                activation.Release();
            }
        }
    }

    private Activation Activate(GrainId id)
    {
        var grain = (Grain)_factories[id.Kind](_services, null);
        grain.Attach(new GrainContext(id, PartitionOf(id), this));
        return new Activation(grain);
    }

    private (string Kind, Type Implementation) Lookup(Type grainInterface) =>
        _interfaces.TryGetValue(grainInterface, out var entry)
            ? entry
            : throw new InvalidOperationException($"no grain class is registered for {grainInterface.Name}");

    /// <summary>Deactivates every activation idle for longer than the idle timeout.</summary>
    public int CollectIdle()
    {
        var idleSince = Environment.TickCount64 - (long)_options.IdleTimeout.TotalMilliseconds;
        var collected = 0;
        foreach (var (id, activation) in _activations)
        {
            if (activation.TryDeactivate(idleSince) && _activations.TryRemove(new KeyValuePair<GrainId, Activation>(id, activation)))
            {
                collected++;
            }
        }
        return collected;
    }

    private void Compact()
    {
        try
        {
            Store.Compact(_options.ChangeLogRetention);
        }
        catch (Exception e)
        {
            _logger.LogWarning(e, "Change log compaction failed; it is retried on the next interval");
        }
    }

    /// <summary>Finishes queued writes, then ends every watch.</summary>
    public void Dispose()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
        {
            return;
        }
        _collector.Dispose();
        _compactor.Dispose();
        Committer.Dispose();
        Hub.CompleteAll();
    }
}
