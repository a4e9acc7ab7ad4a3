using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Contracts.V1;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

public sealed class WatchApiTests
{
    private static string NameOf(WatchEvent e) => e.ObjectCase switch
    {
        WatchEvent.ObjectOneofCase.Namespace => e.Namespace.Metadata.Name,
        WatchEvent.ObjectOneofCase.Network => e.Network.Metadata.Name,
        WatchEvent.ObjectOneofCase.Endpoint => e.Endpoint.Metadata.Name,
        WatchEvent.ObjectOneofCase.Service => e.Service.Metadata.Name,
        WatchEvent.ObjectOneofCase.Node => e.Node.Metadata.Name,
        _ => "",
    };

    /// <summary>
    /// Each page of a List is its own snapshot, so every page carries the first page's resume
    /// token: a change made while the client pages, to an object of a page it already has, still
    /// reaches a watch from the last page's token (a later snapshot's token would skip it).
    /// </summary>
    [Fact]
    public async Task A_watch_from_a_paged_lists_token_gets_the_changes_made_while_paging()
    {
        await using var silo = await SiloInstance.StartAsync();
        for (var i = 0; i < 5; i++) await silo.Client.Namespaces.CreateAsync(Namespace($"paged-{i}"));
        var request = new ListRequest { PageSize = 2 };
        var first = await silo.Client.Namespaces.ListAsync(request);
        Assert.Equal(["paged-0", "paged-1"], first.Namespaces.Select(n => n.Metadata.Name));
        var changed = first.Namespaces[0];
        changed.Metadata.Labels["moved"] = "while-paging";
        await silo.Client.Namespaces.UpdateAsync(changed);
        var tokens = new List<string> { first.ResumeToken };
        for (request.PageToken = first.NextPageToken; request.PageToken.Length > 0;)
        {
            var page = await silo.Client.Namespaces.ListAsync(request);
            tokens.Add(page.ResumeToken);
            request.PageToken = page.NextPageToken;
        }

        Assert.Equal(3, tokens.Count);
        Assert.Single(tokens.Distinct());
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Namespace }, ResumeToken = tokens[^1] });
        var modified = await watch.WaitForAsync(e => e.Type == EventType.Modified && NameOf(e) == "paged-0", "the change made while paging");
        Assert.Equal("while-paging", modified.Namespace.Metadata.Labels["moved"]);
    }

    /// <summary>
    /// Kinds are a set: one named tens of thousands of times (a request of some 40 KB) is watched
    /// once. The embedded store refused the snapshot's query ("too many SQL variables") as an
    /// unclassified error, UNKNOWN, which tells a client a write's outcome is unknown.
    /// </summary>
    [Fact]
    public async Task A_watch_naming_a_kind_many_times_watches_it_once()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("repeated"));
        var request = new WatchRequest();
        request.Kinds.Add(Enumerable.Repeat(Kind.Namespace, 40_000));
        request.Kinds.Add(Kind.Endpoint);

        await using var watch = new WatchCollector(silo.Client, request);
        await watch.WaitForAsync(e => e.InitialEventsEnd, "the end of the snapshot");
        Assert.Equal(["repeated"], watch.Seen.Where(e => e.Type == EventType.Added).Select(NameOf).Order());
        await silo.Client.Namespaces.CreateAsync(Namespace("after"));
        await watch.WaitForAsync(e => e.Type == EventType.Added && NameOf(e) == "after", "the namespace created after the snapshot");
        Assert.Single(watch.Seen, e => NameOf(e) == "after");
    }

    [Fact]
    public async Task Watch_SnapshotThenChanges_AndResumeDeliversExactlyTheRest()
    {
        await using var silo = await SiloInstance.StartAsync();
        for (var i = 0; i < 5; i++) await silo.Client.Namespaces.CreateAsync(Namespace($"before-{i}"));

        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Namespace } });
        await watch.WaitForAsync(e => e.InitialEventsEnd, "the end of the snapshot");
        var snapshot = watch.Seen.Where(e => e.Type == EventType.Added).Select(NameOf).ToList();
        Assert.Equal(Enumerable.Range(0, 5).Select(i => $"before-{i}"), snapshot.Order());
        Assert.All(watch.Seen.Where(e => e.Type == EventType.Added), e => Assert.Empty(e.ResumeToken));

        var live = new List<string>();
        for (var i = 0; i < 30; i++)
        {
            var name = $"after-{i:00}";
            live.Add(name);
            await silo.Client.Namespaces.CreateAsync(Namespace(name));
        }
        var updated = await silo.Client.Namespaces.GetAsync("", "after-05");
        updated.Metadata.Labels["x"] = "y";
        await silo.Client.Namespaces.UpdateAsync(updated);
        await silo.Client.Namespaces.DeleteAsync("", "after-07");
        await watch.WaitForAsync(e => e.Type == EventType.Deleted && NameOf(e) == "after-07", "the deletion");

        var changes = watch.Seen.SkipWhile(e => !e.InitialEventsEnd).Skip(1).Where(e => e.Type != EventType.Bookmark).ToList();
        Assert.Equal(32, changes.Count);
        Assert.All(changes, e => Assert.NotEmpty(e.ResumeToken));

        // Resume from the token of the tenth change: exactly the 22 after it, in the same order.
        await using var resumed = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Namespace }, ResumeToken = changes[9].ResumeToken });
        var rest = new List<WatchEvent>();
        while (rest.Count < 22)
        {
            var e = await resumed.WaitForAsync(e => e.Type != EventType.Bookmark, $"change {rest.Count + 1} of 22 after resuming");
            rest.Add(e);
        }
        Assert.Equal(changes.Skip(10).Select(e => (e.Type, NameOf(e))), rest.Select(e => (e.Type, NameOf(e))));
        await silo.Client.Namespaces.CreateAsync(Namespace("last"));
        Assert.Equal("last", NameOf(await resumed.WaitForAsync(e => e.Type != EventType.Bookmark, "the next live change")));
    }

    [Fact]
    public async Task Watch_FromACompactedRevision_FailsOutOfRange()
    {
        await using var silo = await SiloInstance.StartAsync("--Store:Partitions=1");
        await silo.Client.Namespaces.CreateAsync(Namespace("first"));
        var old = await PositionAsync(silo.Client);
        for (var i = 0; i < 10; i++) await silo.Client.Namespaces.CreateAsync(Namespace($"n-{i}"));

        silo.Store.Store.Compact(retain: 3);

        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            await foreach (var _ in silo.Client.WatchAsync(new WatchRequest { ResumeToken = old })) { }
        });
        Assert.Equal(StatusCode.OutOfRange, error.StatusCode);
        Assert.Contains("list again", error.Status.Detail);
        Assert.StartsWith("resume_token: ", error.Status.Detail, StringComparison.Ordinal);
        // A fresh list + watch works.
        await using var fresh = new WatchCollector(silo.Client, new WatchRequest { ResumeToken = await PositionAsync(silo.Client) });
        await silo.Client.Namespaces.CreateAsync(Namespace("later"));
        await fresh.WaitForAsync(e => NameOf(e) == "later", "a change after the fresh list");
    }

    [Fact]
    public async Task Watch_NamespaceAndNetworkFilters_OnlyDeliverMatchingObjects()
    {
        await using var silo = await SiloInstance.StartAsync();
        await SeedAsync(silo.Client);
        await silo.Client.Namespaces.CreateAsync(Namespace("ns2"));
        await silo.Client.Networks.CreateAsync(Network("other", 101, "10.21.0.0/16"));
        await using var byNamespace = new WatchCollector(silo.Client, new WatchRequest { Namespace = "ns2" });
        await using var byNetwork = new WatchCollector(silo.Client, new WatchRequest { Network = "other", Kinds = { Kind.Endpoint, Kind.Network } });
        await byNamespace.WaitForAsync(e => e.InitialEventsEnd, "namespace watch synced");
        var synced = await byNetwork.WaitForAsync(e => e.InitialEventsEnd, "network watch synced");
        Assert.Equal(["other"], byNetwork.Seen.Where(e => e.Type == EventType.Added).Select(NameOf));
        // Without kinds, the network filter drops only other networks' network-scoped objects.
        await using (var networkOnly = new WatchCollector(silo.Client, new WatchRequest { Network = "other" }))
        {
            await networkOnly.WaitForAsync(e => e.InitialEventsEnd, "network-only watch synced");
            var added = networkOnly.Seen.Where(e => e.Type == EventType.Added).ToList();
            Assert.Equal(["other"], added.Where(e => e.ObjectCase == WatchEvent.ObjectOneofCase.Network).Select(NameOf));
            Assert.Subset(added.Where(e => e.ObjectCase == WatchEvent.ObjectOneofCase.Namespace).Select(NameOf).ToHashSet(), new HashSet<string> { "ns", "ns2" });
            Assert.Contains(added, e => e.ObjectCase == WatchEvent.ObjectOneofCase.Node);
        }

        await silo.Client.Endpoints.CreateAsync(Endpoint("ns", "in-ns-on-net", "net", "node-a"));
        await silo.Client.Endpoints.CreateAsync(Endpoint("ns2", "in-ns2-on-other", "other", "node-a"));

        Assert.Equal("in-ns2-on-other", NameOf(await byNamespace.WaitForAsync(e => e.Type == EventType.Added, "the ns2 endpoint")));
        Assert.Equal("in-ns2-on-other", NameOf(await byNetwork.WaitForAsync(e => e.Type == EventType.Added, "the endpoint on 'other'")));
        Assert.DoesNotContain(byNamespace.Seen, e => NameOf(e) == "in-ns-on-net");
        Assert.DoesNotContain(byNetwork.Seen, e => NameOf(e) == "in-ns-on-net");
    }

    /// <summary>
    /// A watch filtered by network sees what a List filtered by it would show: a service that
    /// leaves the network (to none, as an ExternalName, or to another network) is DELETED there,
    /// and one that enters it is ADDED, live and when the log is replayed after a restart.
    /// </summary>
    [Fact]
    public async Task Watch_ByNetwork_SeesAServiceLeaveAndEnterTheNetwork_LiveAndReplayedAfterARestart()
    {
        var directory = Path.Combine(Path.GetTempPath(), "cp-silo-" + Guid.NewGuid().ToString("N"));
        try
        {
            string start;
            (EventType, string)[] expected =
                [(EventType.Added, "wa"), (EventType.Deleted, ""), (EventType.Added, "wa"), (EventType.Modified, "wa"), (EventType.Deleted, "")];
            await using (var silo = await SiloInstance.StartInAsync(directory, ownsDirectory: false))
            {
                await SeedAsync(silo.Client);
                await silo.Client.Networks.CreateAsync(Network("wa", 101, "10.21.0.0/16"));
                await silo.Client.Networks.CreateAsync(Network("wb", 102, "10.22.0.0/16"));
                start = await PositionAsync(silo.Client);
                await using var watch = new WatchCollector(silo.Client, new WatchRequest { Network = "wa", Kinds = { Kind.Service }, ResumeToken = start });

                var service = await silo.Client.Services.CreateAsync(Service("ns", "mover", "wa"));
                service.Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "example.org" };
                service = await silo.Client.Services.UpdateAsync(service);
                service.Spec = Service("ns", "mover", "wa").Spec;
                service = await silo.Client.Services.UpdateAsync(service);
                service.Metadata.Labels["moved"] = "back";
                service = await silo.Client.Services.UpdateAsync(service);
                // Leaves wa (a ClusterIP service's network is fixed: through ExternalName) for wb, where this watch does not see it deleted.
                service.Spec = new ServiceSpec { Type = ServiceType.ExternalName, ExternalName = "example.org" };
                service = await silo.Client.Services.UpdateAsync(service);
                service.Spec = Service("ns", "mover", "wb").Spec;
                service = await silo.Client.Services.UpdateAsync(service);
                await silo.Client.Services.DeleteAsync("ns", "mover");
                await silo.Client.Services.CreateAsync(Service("ns", "last", "wa"));

                await watch.WaitForAsync(e => NameOf(e) == "last", "the last service");
                Assert.Equal([.. expected, (EventType.Added, "wa")], Changes(watch));
            }
            // Replayed from the log by a restarted silo: the same events.
            await using (var silo = await SiloInstance.StartInAsync(directory, ownsDirectory: true))
            {
                await using var replay = new WatchCollector(silo.Client, new WatchRequest { Network = "wa", Kinds = { Kind.Service }, ResumeToken = start });
                await replay.WaitForAsync(e => NameOf(e) == "last", "the last service, replayed");
                Assert.Equal([.. expected, (EventType.Added, "wa")], Changes(replay));
            }
        }
        finally
        {
            if (Directory.Exists(directory)) Directory.Delete(directory, recursive: true);
        }

        static (EventType, string)[] Changes(WatchCollector watch) =>
            [.. watch.Seen.Where(e => e.Type != EventType.Bookmark).Select(e => (e.Type, e.Service.Spec.Network))];
    }

    [Fact]
    public async Task Watch_IdleStream_GetsBookmarksThatResumeWithoutReplay()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("a"));
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Network }, BookmarkIntervalSeconds = 1 });
        await watch.WaitForAsync(e => e.InitialEventsEnd, "synced");
        // Changes the filter drops still move the position a bookmark reports.
        await silo.Client.Namespaces.CreateAsync(Namespace("b"));
        var bookmark = await watch.WaitForAsync(e => e.Type == EventType.Bookmark && !e.InitialEventsEnd, "an idle bookmark", 5000);
        Assert.Equal(await PositionAsync(silo.Client), bookmark.ResumeToken);

        await using var resumed = new WatchCollector(silo.Client, new WatchRequest { ResumeToken = bookmark.ResumeToken });
        await silo.Client.Namespaces.CreateAsync(Namespace("c"));
        Assert.Equal("c", NameOf(await resumed.WaitForAsync(e => e.Type != EventType.Bookmark, "the first change after the bookmark")));
    }

    /// <summary>
    /// Idle bookmarks come every <c>bookmark_interval_seconds</c>, not on the next tick of a
    /// coarser clock: with the silo's one-second heartbeat as the only wake-up, an interval of
    /// 1 s gave gaps of 2 s and one of 3 s gave gaps of 3–4 s (found by outside testing).
    /// </summary>
    [Fact]
    public async Task Idle_bookmarks_come_every_interval()
    {
        await using var silo = await SiloInstance.StartAsync();
        await using var watch = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Network }, BookmarkIntervalSeconds = 1 });
        await watch.WaitForAsync(e => e.InitialEventsEnd, "synced");
        // Timed from the first idle bookmark: the stream's first events reach the client later
        // than the silo sent them (a new connection, code not yet compiled).
        await watch.WaitForAsync(e => e.Type == EventType.Bookmark, "the first idle bookmark", 5000);
        var gaps = new List<TimeSpan>();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 0; i < 4; i++)
        {
            await watch.WaitForAsync(e => e.Type == EventType.Bookmark, "an idle bookmark", 5000);
            gaps.Add(clock.Elapsed);
            clock.Restart();
        }
        var shown = string.Join(", ", gaps.Select(g => $"{g.TotalMilliseconds:F0} ms"));
        Assert.All(gaps, gap => Assert.True(gap >= TimeSpan.FromMilliseconds(900), $"a bookmark came early: {shown}"));
        // One late gap is allowed for a busy machine; a bookmark that waits for the next heartbeat is late most times.
        Assert.True(gaps.Count(g => g < TimeSpan.FromMilliseconds(1500)) >= 3, $"bookmarks 1 s apart came after {shown}");
    }

    /// <summary>
    /// A resumed stream with nothing to send sends a bookmark at once, so a client that reconnects
    /// after an outage in which nothing changed learns at once that it is connected and current
    /// (not one bookmark interval later). One with changes to send starts with them, as before.
    /// </summary>
    [Fact]
    public async Task A_resumed_watch_with_nothing_to_send_starts_with_a_bookmark()
    {
        await using var silo = await SiloInstance.StartAsync();
        await silo.Client.Namespaces.CreateAsync(Namespace("a"));
        var token = await PositionAsync(silo.Client);

        await using (var current = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Namespace }, ResumeToken = token, BookmarkIntervalSeconds = 3600 }))
        {
            var first = await current.WaitForAsync(_ => true, "the first event of a watch resumed at the head", 5000);
            Assert.Equal(EventType.Bookmark, first.Type);
            Assert.False(first.InitialEventsEnd);
            Assert.Equal(token, first.ResumeToken);
        }

        await silo.Client.Namespaces.CreateAsync(Namespace("b"));
        await silo.Client.Namespaces.CreateAsync(Namespace("c"));
        await using var behind = new WatchCollector(silo.Client, new WatchRequest { Kinds = { Kind.Namespace }, ResumeToken = token, BookmarkIntervalSeconds = 3600 });
        await behind.WaitForAsync(e => NameOf(e) == "c", "the missed changes");
        await silo.Client.Namespaces.CreateAsync(Namespace("d"));
        await behind.WaitForAsync(e => NameOf(e) == "d", "the next live change");
        Assert.Equal([(EventType.Added, "b"), (EventType.Added, "c"), (EventType.Added, "d")], behind.Seen.Select(e => (e.Type, NameOf(e))));
    }

    /// <summary>
    /// A client that stops reading its stream: HTTP/2 flow control holds the server's writes, the
    /// stream's queue of live changes (64 here) overflows, and the silo keeps none of what follows.
    /// When the client reads again the stream catches up from the change log: every change once,
    /// with its token, and no error.
    /// </summary>
    [Fact]
    public async Task A_watcher_that_stops_reading_catches_up_from_the_log_without_error()
    {
        await using var silo = await SiloInstance.StartAsync("--Silo:WatchBuffer=64");
        long catchUps = 0;
        using var listener = new System.Diagnostics.Metrics.MeterListener();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Name == "controlplane.store.feed.catch_ups") l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<long>((_, value, _, _) => Interlocked.Add(ref catchUps, value));
        listener.Start();
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await using var events = silo.Client.WatchAsync(new WatchRequest { Kinds = { Kind.Namespace } }, Calls.Until(stop.Token)).GetAsyncEnumerator();
        while (await events.MoveNextAsync() && !events.Current.InitialEventsEnd) { }

        // Far more than the flow-control windows and the queue hold, while the client reads nothing.
        const int count = 3_000;
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (i, _) => await silo.Client.Namespaces.CreateAsync(Namespace($"stalled-{i:0000}")));

        var names = new List<string>();
        while (names.Count < count)
        {
            Assert.True(await events.MoveNextAsync(), $"the stream ended after {names.Count} of {count} changes");
            var e = events.Current;
            if (e.Type == EventType.Bookmark) continue;
            Assert.Equal(EventType.Added, e.Type);
            Assert.NotEmpty(e.ResumeToken);
            names.Add(NameOf(e));
        }
        Assert.Equal(count, names.Distinct().Count());
        Assert.True(Interlocked.Read(ref catchUps) >= 1, "the stream never fell behind its queue: the test did not stall it");
        // Live again: the next change arrives as the next event.
        await silo.Client.Namespaces.CreateAsync(Namespace("after-the-stall"));
        do Assert.True(await events.MoveNextAsync());
        while (events.Current.Type == EventType.Bookmark);
        Assert.Equal("after-the-stall", NameOf(events.Current));
    }

    /// <summary>
    /// A watcher without a token that stalls until what it still needs is compacted away: the
    /// stream ends OUT_OF_RANGE saying it fell behind, and names no request field (its request
    /// carried no token to blame).
    /// </summary>
    [Fact]
    public async Task A_watcher_that_falls_behind_compaction_is_told_so_not_blamed_for_a_token()
    {
        await using var silo = await SiloInstance.StartAsync("--Silo:WatchBuffer=64", "--Store:Partitions=1");
        using var stop = new CancellationTokenSource(TimeSpan.FromMinutes(2));
        await using var events = silo.Client.WatchAsync(new WatchRequest { Kinds = { Kind.Namespace } }, Calls.Until(stop.Token)).GetAsyncEnumerator();
        while (await events.MoveNextAsync() && !events.Current.InitialEventsEnd) { }

        const int count = 3_000;
        await Parallel.ForEachAsync(Enumerable.Range(0, count), new ParallelOptions { MaxDegreeOfParallelism = 8 },
            async (i, _) => await silo.Client.Namespaces.CreateAsync(Namespace($"behind-{i:0000}")));
        silo.Store.Store.Compact(retain: 3);

        var read = 0;
        var error = await Assert.ThrowsAsync<RpcException>(async () =>
        {
            while (await events.MoveNextAsync()) read++;
        });
        Assert.True(read < count, "every change arrived: the stream never fell behind the compaction");
        Assert.Equal(StatusCode.OutOfRange, error.StatusCode);
        Assert.StartsWith("the watch fell behind", error.Status.Detail, StringComparison.Ordinal);
        Assert.DoesNotContain("resume_token", error.Status.Detail, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Shutdown_EndsOpenWatchesCleanly()
    {
        var silo = await SiloInstance.StartAsync();
        await using (silo)
        {
            var watch = new WatchCollector(silo.Client, new WatchRequest());
            await watch.WaitForAsync(e => e.InitialEventsEnd, "synced");

            await silo.StopAsync();

            Assert.Null(await watch.CompletionAsync());
            await watch.DisposeAsync();
        }
    }
}
