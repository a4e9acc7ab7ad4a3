using System.Buffers.Binary;
using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Runtime.Tests;

public interface ICounterGrain : IGrain
{
    /// <summary>Increments across an await; records a violation if another call was inside at the same time.</summary>
    Task<long> IncrementAsync();

    [ReadOnly]
    Task<long> ReadAsync();

    /// <summary>A read-only call that waits until <paramref name="expected"/> read-only calls are inside together.</summary>
    [ReadOnly]
    Task<int> RendezvousAsync(int expected);

    Task<int> ViolationsAsync();

    Task FailAsync(string field);

    Task DeleteAsync();
}

public sealed class CounterState
{
    public long Value { get; set; }
}

internal sealed class CounterGrain : Grain<CounterState>, ICounterGrain
{
    private int _inside;
    private int _violations;
    private int _readers;
    private TaskCompletionSource _allReaders = new(TaskCreationOptions.RunContinuationsAsynchronously);

    protected override byte[] Serialize(CounterState state)
    {
        var bytes = new byte[8];
        BinaryPrimitives.WriteInt64LittleEndian(bytes, state.Value);
        return bytes;
    }

    protected override CounterState Deserialize(byte[] data) => new() { Value = BinaryPrimitives.ReadInt64LittleEndian(data) };

    public async Task<long> IncrementAsync()
    {
        if (Interlocked.Increment(ref _inside) != 1) _violations++;
        var next = new CounterState { Value = (State?.Value ?? 0) + 1 };
        await Task.Yield();
        await WriteStateAsync(next);
        if (Interlocked.Decrement(ref _inside) != 0) _violations++;
        return next.Value;
    }

    public Task<long> ReadAsync() => Task.FromResult(State?.Value ?? 0);

    public async Task<int> RendezvousAsync(int expected)
    {
        if (Interlocked.Increment(ref _readers) == expected) _allReaders.TrySetResult();
        await _allReaders.Task.WaitAsync(TimeSpan.FromSeconds(10));
        return _readers;
    }

    public Task<int> ViolationsAsync() => Task.FromResult(_violations);

    public Task FailAsync(string field) => throw ControlPlaneException.Invalid(field, "is wrong on purpose");

    public Task DeleteAsync() => ClearStateAsync();
}
