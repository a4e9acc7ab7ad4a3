using System.Buffers.Binary;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Concurrency;
using Orleans.Storage;

namespace ControlPlane.Storage.Tests;

[Alias("test.ICounterGrain")]
public interface ICounterGrain : IGrainWithStringKey
{
    /// <summary>Increments across an await; records a violation if another call was inside at the same time.</summary>
    [Alias("Increment")]
    Task<long> IncrementAsync();

    [ReadOnly]
    [Alias("Read")]
    Task<long> ReadAsync();

    /// <summary>A read-only call that waits until <paramref name="expected"/> read-only calls are inside together.</summary>
    [ReadOnly]
    [Alias("Rendezvous")]
    Task<int> RendezvousAsync(int expected);

    [Alias("Violations")]
    Task<int> ViolationsAsync();

    [Alias("Fail")]
    Task FailAsync(string field);

    [Alias("Delete")]
    Task DeleteAsync();

    /// <summary>Holds a claim on a value of a scope (the store refuses a second holder).</summary>
    [Alias("Claim")]
    Task<long> ClaimAsync(string scope, byte[] low, byte[] high);

    /// <summary>Counts up while referring to counter <paramref name="other"/>, which must exist then and cannot be deleted from then on.</summary>
    [Alias("Refer")]
    Task<long> ReferAsync(string other);

    /// <summary>Counts up, requiring counter <paramref name="other"/> to exist then, with no claim (as a namespace's contents: found by key).</summary>
    [Alias("Require")]
    Task<long> RequireAsync(string other);

    /// <summary>Deletes this counter unless a counter's key starts with this one's followed by '/'.</summary>
    [Alias("DeleteIfEmpty")]
    Task DeleteIfEmptyAsync();

    /// <summary>How many times this grain was activated in this process.</summary>
    [Alias("Activations")]
    Task<int> ActivationsAsync();
}

/// <summary>A counter's state as the store holds it: 8 bytes.</summary>
public sealed class CounterState : IStoredState
{
    public long Value { get; set; }

    public string Namespace => string.Empty;

    public string Index => string.Empty;

    public IReadOnlyList<Claim>? Claims { get; set; }

    public IReadOnlyList<(string Kind, string Key)>? Requires { get; set; }

    public (IReadOnlyList<string> Kinds, string KeyPrefix)? RequiresNone { get; set; }

    public byte[] Encode()
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, Value);
        return bytes;
    }

    public void Decode(byte[] data) => Value = BinaryPrimitives.ReadInt64LittleEndian(data);

    public void Reset() => Value = 0;
}

[GrainType("Counter")]
public sealed class CounterGrain([FromKeyedServices(ObjectStorage.Name)] IGrainStorage storage) : Grain, ICounterGrain
{
    private static readonly System.Collections.Concurrent.ConcurrentDictionary<string, int> Activated = new();
    private readonly GrainState<CounterState> _state = new(new CounterState());
    private int _inside;
    private int _violations;
    private int _readers;
    private readonly TaskCompletionSource _allReaders = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        Activated.AddOrUpdate(this.GetPrimaryKeyString(), 1, (_, n) => n + 1);
        return storage.ReadStateAsync(ObjectStorage.Name, this.GetGrainId(), _state);
    }

    public async Task<long> IncrementAsync()
    {
        if (Interlocked.Increment(ref _inside) != 1) _violations++;
        await Task.Yield();
        _state.State!.Value++;
        try
        {
            await storage.WriteStateAsync(ObjectStorage.Name, this.GetGrainId(), _state);
        }
        catch
        {
            _state.State.Value--;
            throw;
        }
        finally
        {
            if (Interlocked.Decrement(ref _inside) != 0) _violations++;
        }
        return _state.State.Value;
    }

    public Task<long> ReadAsync() => Task.FromResult(_state.State!.Value);

    public async Task<int> RendezvousAsync(int expected)
    {
        if (Interlocked.Increment(ref _readers) == expected) _allReaders.TrySetResult();
        await _allReaders.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return _readers;
    }

    public Task<int> ViolationsAsync() => Task.FromResult(_violations);

    public Task FailAsync(string field) => throw ControlPlaneException.Invalid(field, "is wrong on purpose");

    public Task DeleteAsync() => storage.ClearStateAsync(ObjectStorage.Name, this.GetGrainId(), _state);

    public Task<long> ClaimAsync(string scope, byte[] low, byte[] high) => CountHoldingAsync([new Claim(scope, low, high)], null);

    public Task<long> RequireAsync(string other) => CountHoldingAsync(null, [("Counter", other)]);

    public async Task DeleteIfEmptyAsync()
    {
        _state.State!.RequiresNone = (["Counter"], this.GetPrimaryKeyString() + "/");
        try
        {
            await storage.ClearStateAsync(ObjectStorage.Name, this.GetGrainId(), _state);
        }
        finally
        {
            _state.State.RequiresNone = null;
        }
    }

    public Task<long> ReferAsync(string other) =>
        CountHoldingAsync([Claim.Reference("Counter", other, "Counter", this.GetPrimaryKeyString())], [("Counter", other)]);

    /// <summary>Counts up in a write that holds <paramref name="claims"/> and requires <paramref name="requires"/>.</summary>
    private async Task<long> CountHoldingAsync(IReadOnlyList<Claim>? claims, IReadOnlyList<(string Kind, string Key)>? requires)
    {
        (_state.State!.Claims, _state.State.Requires) = (claims, requires);
        _state.State.Value++;
        try
        {
            await storage.WriteStateAsync(ObjectStorage.Name, this.GetGrainId(), _state);
        }
        catch
        {
            _state.State.Value--;
            throw;
        }
        finally
        {
            (_state.State.Claims, _state.State.Requires) = (null, null);
        }
        return _state.State.Value;
    }

    public Task<int> ActivationsAsync() => Task.FromResult(Activated.GetValueOrDefault(this.GetPrimaryKeyString()));
}
