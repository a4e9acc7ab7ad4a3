using ControlPlane.Runtime.Errors;
using ControlPlane.Runtime.Grains;

namespace ControlPlane.Runtime.Tests;

public sealed class GrainRuntimeTests
{
    [Fact]
    public async Task Invoke_ThousandConcurrentCallsOnOneGrain_NeverInterleave()
    {
        using var test = new TestRuntime();
        var grain = test.Runtime.GetGrain<ICounterGrain>("hammered");
        var results = await Task.WhenAll(Enumerable.Range(0, 1000).Select(_ => Task.Run(() => grain.IncrementAsync())));

        Assert.Equal(0, await grain.ViolationsAsync());
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), results.Order());
        Assert.Equal(1000, await grain.ReadAsync());
    }

    [Fact]
    public async Task Invoke_ReadOnlyCalls_RunTogether()
    {
        using var test = new TestRuntime();
        var grain = test.Runtime.GetGrain<ICounterGrain>("readers");
        await grain.IncrementAsync();

        // Each call waits until all three are inside at once: this only completes if they interleave.
        var readers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => grain.RendezvousAsync(3)));

        Assert.All(readers, count => Assert.Equal(3, count));
    }

    [Fact]
    public async Task Invoke_GrainThrows_CallerGetsTheClassifiedException()
    {
        using var test = new TestRuntime();
        var grain = test.Runtime.GetGrain<ICounterGrain>("failing");

        var error = await Assert.ThrowsAsync<ControlPlaneException>(() => grain.FailAsync("spec.answer"));

        Assert.Equal(ErrorCode.InvalidArgument, error.Code);
        Assert.Equal("spec.answer", error.Field);
        Assert.Equal(0, await grain.ReadAsync());
    }

    [Fact]
    public async Task CollectIdle_DeactivatedGrain_ReloadsItsStateOnTheNextCall()
    {
        using var test = new TestRuntime(new RuntimeOptions { IdleTimeout = TimeSpan.Zero });
        var grain = test.Runtime.GetGrain<ICounterGrain>("sleepy");
        await grain.IncrementAsync();
        await grain.IncrementAsync();

        Assert.Equal(1, test.Runtime.CollectIdle());
        Assert.Equal(0, test.Runtime.ActivationCount);

        Assert.Equal(3, await grain.IncrementAsync());
    }

    [Fact]
    public async Task Restart_SameStore_KeepsStateAndContinuesRevisions()
    {
        var directory = Path.Combine(Path.GetTempPath(), "cp-restart-" + Guid.NewGuid().ToString("N"));
        try
        {
            long[] headsBefore;
            using (var first = new TestRuntime(directory: directory))
            {
                await first.Runtime.GetGrain<ICounterGrain>("kept").IncrementAsync();
                headsBefore = first.Store.List(["Counter"], null, null, 10).Heads;
            }
            using var second = new TestRuntime(directory: directory);
            var grain = second.Runtime.GetGrain<ICounterGrain>("kept");

            Assert.Equal(2, await grain.IncrementAsync());
            var headsAfter = second.Store.List(["Counter"], null, null, 10).Heads;
            Assert.Equal(headsBefore.Sum() + 1, headsAfter.Sum());
            Assert.All(headsAfter.Zip(headsBefore), pair => Assert.True(pair.First >= pair.Second));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Fact]
    public async Task Write_ManyConcurrentGrains_AreGroupCommittedInFewerTransactions()
    {
        using var test = new TestRuntime();
        await Task.WhenAll(Enumerable.Range(0, 500).Select(i => test.Runtime.GetGrain<ICounterGrain>("g" + i).IncrementAsync()));

        Assert.True(test.Runtime.Committer.Transactions < 500, $"{test.Runtime.Committer.Transactions} transactions for 500 writes");
        Assert.Equal(500, test.Store.List(["Counter"], null, null, 1000).Objects.Count);
    }

    [Fact]
    public async Task Write_AfterAnotherSiloTookThePartitions_IsFencedAndChangesNothing()
    {
        using var first = new TestRuntime();
        await first.Runtime.GetGrain<ICounterGrain>("contested").IncrementAsync();

        // A second owner opens the same database: every epoch moves on.
        using var usurper = new Storage.SqliteGrainStore(Path.Combine(first.Directory, "test.db"));
        usurper.Open("usurper", 16);

        var error = await Assert.ThrowsAsync<ControlPlaneException>(() => first.Runtime.GetGrain<ICounterGrain>("contested").IncrementAsync());
        Assert.Equal(ErrorCode.Unavailable, error.Code);
        var stored = usurper.Read("Counter", "contested");
        Assert.NotNull(stored);
        Assert.Equal(1, BitConverter.ToInt64(stored.Data));
    }
}
