using ControlPlane.Storage.Changes;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Storage.Tests;

public sealed class ChangeFeedTests
{
    private static readonly FeedFilter Counters = new(["Counter"]);

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Resume_FromAMidPoint_DeliversExactlyTheLaterChangesInOrder(string provider)
    {
        await using var test = await StoreCluster.StartAsync(provider: provider);
        var grains = Enumerable.Range(0, 20).Select(i => test.Counter("c" + i)).ToArray();
        foreach (var grain in grains) await grain.IncrementAsync();
        var token = test.Store.Store.List(["Counter"], null, null, 1).Heads;

        // Changes after the token, some written while the resumed feed is already live.
        foreach (var grain in grains.Take(10)) await grain.IncrementAsync();
        using var feed = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, Counters, token);
        var late = Task.WhenAll(grains.Skip(10).Select(g => g.IncrementAsync()));

        var seen = new List<Change>();
        await ReadChangesAsync(feed, seen, 20);
        await late;

        Assert.Equal(20, seen.Select(c => c.Key).Distinct().Count());
        Assert.All(seen, c => Assert.True(c.Revision > token[c.Partition]));
        foreach (var partition in seen.GroupBy(c => c.Partition))
        {
            var revisions = partition.Select(c => c.Revision).ToArray();
            Assert.Equal(revisions.Order(), revisions);
        }
        // Nothing more: no duplicates after the twenty.
        Assert.Equal(FeedItemType.Idle, (await feed.NextAsync(TimeSpan.FromMilliseconds(100), CancellationToken.None)).Type);
        Assert.Equal(test.Store.Store.List(["Counter"], null, null, 1).Heads, feed.Position.ToArray());
    }

    /// <summary>
    /// An idle feed answers Idle when its idle time is up, not on the hub's next heartbeat
    /// (a second apart): a watch's bookmark interval is kept to the feed's own timer.
    /// </summary>
    [Fact]
    public async Task Next_OnAnIdleFeed_AnswersIdleWhenItsTimeIsUp()
    {
        await using var test = await StoreCluster.StartAsync();
        using var feed = await ChangeFeed.FromSnapshotAsync(test.Store.Store, test.Store.Hub, Counters);
        Assert.Equal(FeedItemType.InitialEventsEnd, (await feed.NextAsync(Timeout.InfiniteTimeSpan, CancellationToken.None)).Type);
        var waits = new List<TimeSpan>();
        for (var i = 0; i < 5; i++)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            Assert.Equal(FeedItemType.Idle, (await feed.NextAsync(TimeSpan.FromMilliseconds(200), CancellationToken.None)).Type);
            waits.Add(clock.Elapsed);
        }
        var shown = string.Join(", ", waits.Select(w => $"{w.TotalMilliseconds:F0} ms"));
        Assert.All(waits, wait => Assert.True(wait >= TimeSpan.FromMilliseconds(195), $"Idle came early: {shown}"));
        Assert.True(waits.Sum(w => w.TotalSeconds) < 2.5, $"five idle waits of 200 ms took {shown}");
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Snapshot_WhileWritesRace_SeesEveryObjectOnceAndEveryLaterChange(string provider)
    {
        await using var test = await StoreCluster.StartAsync(provider: provider);
        var grains = Enumerable.Range(0, 50).Select(i => test.Counter("s" + i)).ToArray();
        var writes = Task.WhenAll(grains.Select(g => Task.Run(g.IncrementAsync)));
        using var feed = await ChangeFeed.FromSnapshotAsync(test.Store.Store, test.Store.Hub, Counters);
        await writes;

        var added = new HashSet<string>();
        var ended = false;
        while (added.Count < 50)
        {
            var item = await feed.NextAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            Assert.NotEqual(FeedItemType.Idle, item.Type);
            if (item.Type == FeedItemType.InitialEventsEnd) { ended = true; continue; }
            Assert.True(added.Add(item.Change!.Key), $"{item.Change.Key} delivered twice");
        }
        if (!ended)
        {
            Assert.Equal(FeedItemType.InitialEventsEnd, (await feed.NextAsync(TimeSpan.FromSeconds(1), CancellationToken.None)).Type);
        }
        Assert.Equal(FeedItemType.Idle, (await feed.NextAsync(TimeSpan.FromMilliseconds(100), CancellationToken.None)).Type);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Resume_FromACompactedRevision_FailsWithRevisionCompacted(string provider)
    {
        await using var test = await StoreCluster.StartAsync(partitions: 1, provider: provider);
        var grain = test.Counter("busy");
        await grain.IncrementAsync();
        var old = test.Store.Store.List(["Counter"], null, null, 1).Heads;
        using var published = test.Store.Hub.Subscribe();
        for (var i = 0; i < 10; i++) await grain.IncrementAsync();
        // Compaction never outruns this silo's own fan-out in use (its log reader, on a shared
        // store, is caught up long before 100,000 changes); here the margin is 3, so wait for it.
        var head = test.Store.Store.List(["Counter"], null, null, 1).Heads[0];
        using var deadline = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        while (true)
        {
            Assert.True(await published.WaitToReadAsync(deadline.Token));
            if (published.TryRead(out var batch) && batch.Any(c => c.Revision == head)) break;
        }

        test.Store.Store.Compact(retain: 3);

        var error = await Assert.ThrowsAsync<ControlPlaneException>(() => ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, Counters, old));
        Assert.Equal(ErrorCode.RevisionCompacted, error.Code);
        // A recent enough position still resumes.
        using var recent = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, Counters, [old[0] + 7]);
        Assert.Equal(3, await CountChanges(recent));
    }

    /// <summary>
    /// A modification that moves its object to another index value records the value it left, in
    /// the published change and in the log: a feed filtered on the index sees the object added when
    /// it enters and deleted when it leaves, live and replayed alike.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task AModificationThatMovesItsObject_RecordsWhereItWas_SoAFilteredFeedSeesItLeaveAndEnter(string provider)
    {
        await using var test = await StoreCluster.StartAsync(provider: provider);
        var start = test.Store.Store.List(["Thing"], null, null, 1).Heads;
        var onX = new FeedFilter(["Thing"], Predicate: (_, index) => index == "x");
        using var live = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, onX, start);
        var partition = test.Store.PartitionOf("Thing", "t");
        var revision = 0L;
        foreach (var (index, before) in new (string, string?)[] { ("x", null), ("x", "x"), ("y", "x"), ("y", "y"), ("x", "y") })
        {
            revision = await test.Store.Committer.WriteAsync(new WriteRequest
            {
                Kind = "Thing", Key = "t", Partition = partition, ExpectedRevision = revision, Data = [(byte)revision], Index = index, PreviousIndex = before,
            });
        }

        var logged = await test.Store.Store.ReadChangesAsync(start, limit: 100);
        Assert.Equal([null, null, "x", null, "y"], logged.Changes.Select(c => c.PreviousIndex));
        using var replayed = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, onX, start);
        foreach (var feed in new[] { live, replayed })
        {
            var seen = new List<ChangeType>();
            for (var i = 0; i < 4; i++) seen.Add((await feed.NextAsync(TimeSpan.FromSeconds(10), CancellationToken.None)).Change!.Type);
            Assert.Equal([ChangeType.Added, ChangeType.Modified, ChangeType.Deleted, ChangeType.Added], seen);
            Assert.Equal(FeedItemType.Idle, (await feed.NextAsync(TimeSpan.FromMilliseconds(100), CancellationToken.None)).Type);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Delete_IsDeliveredWithTheLastState(string provider)
    {
        await using var test = await StoreCluster.StartAsync(provider: provider);
        var grain = test.Counter("doomed");
        await grain.IncrementAsync();
        using var feed = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, Counters, test.Store.Store.List(["Counter"], null, null, 1).Heads);

        await grain.DeleteAsync();

        var item = await feed.NextAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
        Assert.Equal(ChangeType.Deleted, item.Change!.Type);
        Assert.Equal(1, BitConverter.ToInt64(item.Change.Data));
        Assert.Null(test.Store.Store.Read("Counter", "doomed"));
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ReadChanges_PagesPerPartition_AndSaysWhereThePageEnds(string provider)
    {
        await using var test = await StoreCluster.StartAsync(partitions: 2, provider: provider);
        var start = test.Store.Store.List(["Counter"], null, null, 1).Heads;
        await Task.WhenAll(Enumerable.Range(0, 12).Select(i => test.Counter("p" + i).IncrementAsync()));
        var heads = test.Store.Store.List(["Counter"], null, null, 1).Heads;

        var seen = new List<Change>();
        var position = start;
        var pages = 0;
        while (true)
        {
            var range = await test.Store.Store.ReadChangesAsync(position, limit: 2);
            pages++;
            Assert.All(range.Changes, c => Assert.InRange(c.Revision, position[c.Partition] + 1, range.Through[c.Partition]));
            foreach (var partition in range.Changes.GroupBy(c => c.Partition)) Assert.True(partition.Count() <= 2);
            seen.AddRange(range.Changes);
            position = range.Through;
            if (range.Complete) break;
            Assert.NotEqual(heads, range.Through);
        }
        Assert.Equal(heads, position);
        Assert.True(pages > 1);
        Assert.Equal(12, seen.Select(c => c.Key).Distinct().Count());
        AssertConsecutiveAfter(start, seen);
    }

    /// <summary>
    /// Writes made one after another, each acknowledged before the next began, to objects in
    /// different partitions: the log gives them back in that order, read whole or page by page
    /// (a page cut in one partition leaves the later changes of every partition for the next), so
    /// that a watcher never sees, say, an address taken by a new object before its earlier holder's
    /// delete.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ChangesAcrossPartitions_AreReadInTheOrderTheyWereAcknowledged_WholeOrInPages(string provider)
    {
        await using var test = await StoreCluster.StartAsync(partitions: 4, provider: provider);
        var start = test.Store.Store.List(["Counter"], null, null, 1).Heads;
        // Keys chosen so that the order runs against the partitions' order, unevenly: a page of
        // one change per partition holds changes committed after others it leaves out.
        int[] partitions = [3, 3, 3, 0, 2, 2, 1, 0, 3, 1, 1, 2, 0, 0, 3, 2];
        var keys = new List<string>();
        for (var i = 0; keys.Count < partitions.Length; i++)
        {
            var key = "o" + i;
            if (test.Store.PartitionOf("Counter", key) == partitions[keys.Count] && !keys.Contains(key)) keys.Add(key);
        }
        foreach (var key in keys) await test.Counter(key).IncrementAsync();

        Assert.Equal(keys, (await test.Store.Store.ReadChangesAsync(start, limit: 100)).Changes.Select(c => c.Key));
        foreach (var limit in new[] { 1, 2, 3 })
        {
            var paged = new List<string>();
            var position = start;
            while (true)
            {
                var range = await test.Store.Store.ReadChangesAsync(position, limit);
                paged.AddRange(range.Changes.Select(c => c.Key));
                position = range.Through;
                if (range.Complete) break;
            }
            Assert.Equal(keys, paged);
        }
        using var feed = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, Counters, start);
        var fed = new List<string>();
        while (fed.Count < keys.Count) fed.Add((await feed.NextAsync(TimeSpan.FromSeconds(10), CancellationToken.None)).Change!.Key);
        Assert.Equal(keys, fed);
    }

    /// <summary>
    /// A watcher that stops reading while many changes commit: its subscription overflows and is
    /// emptied at once (the stalled watcher holds no changes), and when it reads again it catches
    /// up from the log in pages, then takes live changes: every change once, in order, no error.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task AStalledWatcher_HoldsAtMostItsCapacity_AndCatchesUpFromTheLog(string provider)
    {
        await using var test = await StoreCluster.StartAsync(partitions: 2, provider: provider);
        var grains = Enumerable.Range(0, 40).Select(i => test.Counter("lag" + i)).ToArray();
        foreach (var grain in grains) await grain.IncrementAsync();
        var token = test.Store.Store.List(["Counter"], null, null, 1).Heads;
        using var feed = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, Counters, token, capacity: 64);

        // More than a log page per partition, while the feed reads nothing.
        var rounds = ChangeFeed.PageLimit * 2 / grains.Length + 10;
        for (var round = 0; round < rounds; round++)
        {
            await Task.WhenAll(grains.Select(g => g.IncrementAsync()));
            Assert.InRange(feed.Buffered, 0, 64);
        }
        var heads = test.Store.Store.List(["Counter"], null, null, 1).Heads;
        // Changes committed while it catches up reach it live.
        var late = Task.Run(async () => { foreach (var grain in grains.Take(5)) await grain.IncrementAsync(); });

        var seen = new List<Change>();
        var expected = rounds * grains.Length + 5;
        await ReadChangesAsync(feed, seen, expected);
        await late;

        Assert.True(feed.CatchUps >= 1);
        Assert.Equal(FeedItemType.Idle, (await feed.NextAsync(TimeSpan.FromMilliseconds(100), CancellationToken.None)).Type);
        Assert.Equal(expected, seen.Select(c => (c.Partition, c.Revision)).Distinct().Count());
        AssertConsecutiveAfter(token, seen);
        Assert.True(heads.Zip(feed.Position.ToArray()).All(p => p.Second >= p.First));
        Assert.Equal(test.Store.Store.List(["Counter"], null, null, 1).Heads, feed.Position.ToArray());
    }

    /// <summary>
    /// A feed resumed far behind reads a short first page (so its first events go out at once,
    /// not after a full page of every partition) and the rest in full pages, every change once
    /// and in order.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Resume_FarBehind_StartsWithAShortPage_ThenDeliversTheRest(string provider)
    {
        await using var test = await StoreCluster.StartAsync(partitions: 2, provider: provider);
        var grains = Enumerable.Range(0, 30).Select(i => test.Counter("far" + i)).ToArray();
        var token = test.Store.Store.List(["Counter"], null, null, 1).Heads;
        for (var round = 0; round < 10; round++) await Task.WhenAll(grains.Select(g => g.IncrementAsync()));

        using var feed = await ChangeFeed.ResumeAsync(test.Store.Store, test.Store.Hub, Counters, token);
        var seen = new List<Change>();
        while (feed.TryNext(out var ready)) seen.Add(ready.Change!);
        Assert.InRange(seen.Count, 1, 2 * ChangeFeed.FirstPageLimit);
        await ReadChangesAsync(feed, seen, 300);
        Assert.Equal(FeedItemType.Idle, (await feed.NextAsync(TimeSpan.FromMilliseconds(100), CancellationToken.None)).Type);
        AssertConsecutiveAfter(token, seen);
    }

    /// <summary>Reads from the feed until <paramref name="seen"/> holds <paramref name="count"/> changes; anything else fails.</summary>
    private static async Task ReadChangesAsync(ChangeFeed feed, List<Change> seen, int count)
    {
        while (seen.Count < count)
        {
            var item = await feed.NextAsync(TimeSpan.FromSeconds(10), CancellationToken.None);
            Assert.Equal(FeedItemType.Change, item.Type);
            seen.Add(item.Change!);
        }
    }

    /// <summary>Each partition's changes in <paramref name="seen"/> are the revisions right after <paramref name="start"/>'s, in order, none missing or twice.</summary>
    private static void AssertConsecutiveAfter(long[] start, IEnumerable<Change> seen)
    {
        foreach (var partition in seen.GroupBy(c => c.Partition))
        {
            Assert.Equal(Enumerable.Range(1, partition.Count()).Select(i => start[partition.Key] + i), partition.Select(c => c.Revision));
        }
    }

    private static async Task<int> CountChanges(ChangeFeed feed)
    {
        var count = 0;
        while ((await feed.NextAsync(TimeSpan.FromMilliseconds(100), CancellationToken.None)).Type == FeedItemType.Change) count++;
        return count;
    }
}
