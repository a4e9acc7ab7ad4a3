using ControlPlane.Storage.Errors;
using ControlPlane.Storage.Sqlite;
using Orleans.Storage;

namespace ControlPlane.Storage.Tests;

/// <summary>Orleans grains on the control plane's storage provider: turn rules, idle collection, etags, group commit, fencing.</summary>
public sealed class GrainStorageTests
{
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task Writes_ThousandConcurrentCallsOnOneGrain_NeverInterleave(string provider)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        var grain = cluster.Counter("hammered");
        var results = await Task.WhenAll(Enumerable.Range(0, 1000).Select(_ => Task.Run(() => grain.IncrementAsync())));

        Assert.Equal(0, await grain.ViolationsAsync());
        Assert.Equal(Enumerable.Range(1, 1000).Select(i => (long)i), results.Order());
        Assert.Equal(1000, await grain.ReadAsync());
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ReadOnlyCalls_RunTogether(string provider)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        var grain = cluster.Counter("readers");
        await grain.IncrementAsync();

        // Each call waits until all three are inside at once: this only completes if they interleave.
        var readers = await Task.WhenAll(Enumerable.Range(0, 3).Select(_ => grain.RendezvousAsync(3)));

        Assert.All(readers, count => Assert.Equal(3, count));
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task AWrite_AmidAFloodOfReads_IsNotStarved_AndReadsAfterItSeeIt(string provider)
    {
        // Orleans lets a read-only call start while a write waits for running reads. Our read-only
        // methods never await, so a queued write waits for no more than the reads already inside.
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        var grain = cluster.Counter("flooded");
        using var stop = new CancellationTokenSource();
        var readers = Enumerable.Range(0, 16).Select(_ => Task.Run(async () =>
        {
            var reads = 0;
            while (!stop.IsCancellationRequested)
            {
                await grain.ReadAsync();
                reads++;
            }
            return reads;
        })).ToArray();
        await Task.Delay(200);

        var writes = System.Diagnostics.Stopwatch.StartNew();
        for (var i = 1; i <= 20; i++)
        {
            Assert.Equal(i, await grain.IncrementAsync());
            Assert.Equal(i, await grain.ReadAsync());
        }
        writes.Stop();
        stop.Cancel();
        var total = (await Task.WhenAll(readers)).Sum();

        Assert.True(total > 100, $"only {total} reads ran beside the writes");
        Assert.True(writes.Elapsed < TimeSpan.FromSeconds(10), $"20 writes took {writes.Elapsed} among {total} reads");
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task AClassifiedFailure_ReachesTheClientAsTheSameTypeWithItsField(string provider)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);

        var error = await Assert.ThrowsAsync<ControlPlaneException>(() => cluster.Counter("failing").FailAsync("spec.answer"));

        Assert.Equal(ErrorCode.InvalidArgument, error.Code);
        Assert.Equal("spec.answer", error.Field);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ACollectedActivation_ReloadsItsStateOnTheNextCall(string provider)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        var grain = cluster.Counter("sleepy-" + provider);
        await grain.IncrementAsync();
        await grain.IncrementAsync();
        Assert.Equal(1, await grain.ActivationsAsync());

        await cluster.DeactivateAsync(grain);

        Assert.Equal(3, await grain.IncrementAsync());
        Assert.Equal(2, await grain.ActivationsAsync());
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ARestart_OnTheSameStore_KeepsStateAndContinuesRevisions(string provider)
    {
        var directory = Path.Combine(Path.GetTempPath(), "cp-restart-" + Guid.NewGuid().ToString("N"));
        try
        {
            long[] headsBefore;
            var database = provider == "postgres" ? ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase() : null;
            await using (var first = await StoreCluster.StartAsync(directory, provider: provider, database: database))
            {
                await first.Counter("kept").IncrementAsync();
                headsBefore = first.Store.Store.List(["Counter"], null, null, 10).Heads;
            }
            await using var second = await StoreCluster.StartAsync(directory, provider: provider, database: database);

            Assert.Equal(2, await second.Counter("kept").IncrementAsync());
            var headsAfter = second.Store.Store.List(["Counter"], null, null, 10).Heads;
            Assert.Equal(headsBefore.Sum() + 1, headsAfter.Sum());
            Assert.All(headsAfter.Zip(headsBefore), pair => Assert.True(pair.First >= pair.Second));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ConcurrentGrainsWrites_ShareTransactions(string provider)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        await Task.WhenAll(Enumerable.Range(0, 500).Select(i => cluster.Counter("g" + i).IncrementAsync()));

        var transactions = cluster.Store.Committer.Transactions;
        Assert.True(transactions < 500, $"{transactions} transactions for 500 writes");
        Assert.Equal(500, cluster.Store.Store.List(["Counter"], null, null, 1000).Objects.Count);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task AWriteFromAStaleActivation_FailsWithInconsistentState_AndTheNextCallReloads(string provider)
    {
        // What a duplicate activation during a membership change looks like to the store: someone
        // else committed the object since this activation read it.
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        var grain = cluster.Counter("twice");
        await grain.IncrementAsync();
        var stored = cluster.Store.Store.Read("Counter", "twice")!;
        await cluster.Store.Committer.WriteAsync(new WriteRequest
        {
            Kind = "Counter", Key = "twice", Partition = stored.Partition, ExpectedRevision = stored.Revision,
            Data = new CounterState { Value = 41 }.Encode(),
        });

        await Assert.ThrowsAsync<InconsistentStateException>(() => grain.IncrementAsync());

        Assert.Equal(41, BitConverter.ToInt64(cluster.Store.Store.Read("Counter", "twice")!.Data));
        Assert.Equal(42, await grain.IncrementAsync());
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ACreateFromAnActivationThatFoundNothing_AfterSomeoneElseCreatedAndDeletedTheObject_IsRefused(string provider)
    {
        // A zombie create: the activation found no object; then another writer (a duplicate
        // activation on another silo) created and deleted it. "Must not exist" holds again, but
        // the delete left a tombstone that this activation never saw.
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        var grain = cluster.Counter("zombie");
        Assert.Equal(0, await grain.ReadAsync());
        var partition = cluster.Store.PartitionOf("Counter", "zombie");
        var data = new CounterState { Value = 7 }.Encode();
        var created = await cluster.Store.Committer.WriteAsync(new WriteRequest { Kind = "Counter", Key = "zombie", Partition = partition, ExpectedRevision = 0, Data = data });
        var deleted = await cluster.Store.Committer.WriteAsync(new WriteRequest { Kind = "Counter", Key = "zombie", Partition = partition, ExpectedRevision = created, PreviousData = data });
        Assert.Equal(deleted, (await cluster.Store.Store.ReadForActivationAsync("Counter", "zombie")).DeletedRevision);

        await Assert.ThrowsAsync<InconsistentStateException>(() => grain.IncrementAsync());

        Assert.Null(cluster.Store.Store.Read("Counter", "zombie"));
        // Orleans deactivated the stale activation; the next one reads the tombstone and creates.
        Assert.Equal(1, await grain.IncrementAsync());
        Assert.Equal(0, (await cluster.Store.Store.ReadForActivationAsync("Counter", "zombie")).DeletedRevision);
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ADeletedObject_IsCreatedAgain_ByItsActivation_ByANewOne_AndAfterItsTombstoneIsCompacted(string provider)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        var grain = cluster.Counter("phoenix");
        async Task AssertCreatedAgainAsync()
        {
            await grain.IncrementAsync();
            Assert.NotNull(cluster.Store.Store.Read("Counter", "phoenix"));
            await grain.DeleteAsync();
            Assert.Null(cluster.Store.Store.Read("Counter", "phoenix"));
        }
        await AssertCreatedAgainAsync();
        await AssertCreatedAgainAsync();
        await cluster.DeactivateAsync(grain);
        await AssertCreatedAgainAsync();

        // The tombstone goes with its delete's change record; an etag naming it still creates.
        Assert.NotEqual(0, (await cluster.Store.Store.ReadForActivationAsync("Counter", "phoenix")).DeletedRevision);
        cluster.Store.Store.Compact(0);
        Assert.Equal(0, (await cluster.Store.Store.ReadForActivationAsync("Counter", "phoenix")).DeletedRevision);
        await AssertCreatedAgainAsync();
    }

    [Fact]
    public async Task TwoSilosOnOnePostgresDatabase_ActivatingTheSameObject_WriteOneUnbrokenChain_AndNeverShareAnAddress()
    {
        // Two Orleans clusters on one database: each activates "shared", which is what a duplicate
        // activation during a membership change is. Every write either commits on top of the last
        // one or fails cleanly; the change log shows one chain and who wrote each link.
        var database = ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase();
        await using var a = await StoreCluster.StartAsync(provider: "postgres", database: database, siloId: "silo-a");
        await using var b = await StoreCluster.StartAsync(provider: "postgres", database: database, siloId: "silo-b");
        async Task<int> Hammer(StoreCluster silo)
        {
            var committed = 0;
            for (var i = 0; i < 150; i++)
            {
                try
                {
                    await silo.Counter("shared").IncrementAsync();
                    committed++;
                }
                catch (InconsistentStateException)
                {
                    // The other silo wrote since this activation read; Orleans deactivated it and the next call reloads.
                }
            }
            return committed;
        }
        var counts = await Task.WhenAll(Hammer(a), Hammer(b));
        byte[] address = [10, 9, 9, 9];
        var claims = await Task.WhenAll(Enumerable.Range(0, 20).Select(async i =>
        {
            try
            {
                await (i % 2 == 0 ? a : b).Counter("holder-" + i).ClaimAsync("address/shared", address, address);
                return 1;
            }
            catch (ClaimTakenException)
            {
                return 0;
            }
        }));

        Assert.Equal(counts.Sum(), BitConverter.ToInt64(a.Store.Store.Read("Counter", "shared")!.Data));
        Assert.True(counts.Sum() >= 150, $"only {counts.Sum()} of 300 increments committed");
        var chain = ControlPlane.Tests.Shared.PostgresServer.Instance.Psql(
            "SELECT revision, prev, writer FROM cp_changes WHERE kind = 'Counter' AND key = 'shared' ORDER BY revision", new Npgsql.NpgsqlConnectionStringBuilder(database).Database!)
            .Split('\n').Select(line => line.Split('|')).Select(f => (Revision: long.Parse(f[0]), Prev: long.Parse(f[1]), Writer: f[2])).ToList();
        Assert.Equal(counts.Sum(), chain.Count);
        Assert.Equal(0, chain[0].Prev);
        Assert.All(chain.Zip(chain.Skip(1)), link => Assert.Equal(link.First.Revision, link.Second.Prev));
        Assert.Equal(["silo-a", "silo-b"], chain.Select(c => c.Writer).Distinct().Order());
        Assert.Equal(1, claims.Sum());
        Assert.Single(a.Store.Store.ListClaims("address/shared"));
    }

    [Fact]
    public async Task AfterPostgresEndedEveryConnection_TheNextWritesAndReadsSucceed_OnFreshConnections()
    {
        // What a PostgreSQL restart (or a failover, or an idle-connection reaper) leaves behind:
        // pooled connections whose server side is gone. No caller should pay for finding them.
        await using var cluster = await StoreCluster.StartAsync(provider: "postgres");
        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => cluster.Counter("before-" + i).IncrementAsync()));
        Assert.NotNull(cluster.Store.Store.Read("Counter", "before-0"));
        var name = new Npgsql.NpgsqlConnectionStringBuilder(cluster.Database).Database!;
        var server = ControlPlane.Tests.Shared.PostgresServer.Instance;
        var sessions = server.Psql($"SELECT string_agg(pid::text, ',') FROM pg_stat_activity WHERE datname = '{name}'");
        Assert.True(sessions.Split(',').Length >= 2, $"only sessions {sessions}");
        server.Psql($"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid IN ({sessions})");
        // Ending a session is asynchronous: wait until every one of them is gone, as after a restart.
        var ending = System.Diagnostics.Stopwatch.StartNew();
        while (server.Psql($"SELECT count(*) FROM pg_stat_activity WHERE pid IN ({sessions})") != "0")
        {
            Assert.True(ending.Elapsed < TimeSpan.FromSeconds(10), "the ended sessions are still there");
            await Task.Delay(20);
        }

        await Task.WhenAll(Enumerable.Range(0, 8).Select(i => cluster.Counter("after-" + i).IncrementAsync()));
        Assert.Equal(1, BitConverter.ToInt64(cluster.Store.Store.Read("Counter", "before-1")!.Data));
        Assert.Equal(1, BitConverter.ToInt64(cluster.Store.Store.Read("Counter", "after-1")!.Data));
        Assert.Null(cluster.Store.Committer.Failure);
    }

    [Fact]
    public async Task AfterAnotherOwnerTookThePartitions_WritesAreFenced_AndTheStoreSaysSo()
    {
        await using var cluster = await StoreCluster.StartAsync();
        await cluster.Counter("contested").IncrementAsync();
        Assert.Null(cluster.Store.Committer.Probe());

        // A second owner opens the same database (bypassing the directory lock): every epoch moves on.
        using var usurper = new SqliteGrainStore(cluster.DatabasePath);
        usurper.Open("usurper", 16);

        var error = await Assert.ThrowsAsync<ControlPlaneException>(() => cluster.Counter("contested").IncrementAsync());
        Assert.Equal(ErrorCode.Unavailable, error.Code);
        Assert.NotNull(cluster.Store.Committer.Failure);
        Assert.NotNull(cluster.Store.Committer.Probe());
        Assert.Equal(1, BitConverter.ToInt64(usurper.Read("Counter", "contested")!.Data));
    }

    /// <summary>
    /// References: a write that requires an object commits only while it exists, and an object
    /// referred to cannot be deleted, both decided in the commit's transaction. On PostgreSQL the
    /// two writes race from two silos, each with its own group commit.
    /// </summary>
    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task AReferenceAndADeleteOfWhatItRefersTo_NeverBothCommit(string provider)
    {
        var database = provider == "postgres" ? ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase() : null;
        await using var a = await StoreCluster.StartAsync(provider: provider, database: database, siloId: "silo-a");
        await using var second = provider == "postgres" ? await StoreCluster.StartAsync(provider: provider, database: database, siloId: "silo-b") : null;
        var b = second ?? a;

        var missing = await Assert.ThrowsAsync<ReferenceException>(() => a.Counter("child-0").ReferAsync("nobody"));
        Assert.True(missing.Missing);
        Assert.Equal(("Counter", "nobody"), (missing.Kind, missing.Key));
        Assert.Null(a.Store.Store.Read("Counter", "child-0"));

        await a.Counter("parent-0").IncrementAsync();
        await a.Counter("child-0").ReferAsync("parent-0");
        var referenced = await Assert.ThrowsAsync<ReferenceException>(() => b.Counter("parent-0").DeleteAsync());
        Assert.False(referenced.Missing);
        Assert.Equal(("Counter", "child-0"), (referenced.Kind, referenced.Key));
        await a.Counter("child-0").DeleteAsync();
        await b.Counter("parent-0").DeleteAsync();

        var both = 0;
        var contained = 0;
        for (var round = 1; round <= 40; round++)
        {
            // The other kind of reference: found by key, with no claim (a namespace's contents).
            var (box, item) = ($"box-{round}", $"box-{round}/item");
            await a.Counter(box).IncrementAsync();
            await b.Counter(box).ReadAsync();
            await a.Counter(item).ReadAsync();
            var raced = await Task.WhenAll(Outcome(() => b.Counter(box).DeleteIfEmptyAsync()), Outcome(() => a.Counter(item).RequireAsync(box)));
            Assert.All(raced, o => Assert.True(o is null or ReferenceException, $"round {round}: {o}"));
            if (raced.All(o => o is null)) contained++;
            Assert.True(a.Store.Store.Read("Counter", item) is null || a.Store.Store.Read("Counter", box) is not null, $"round {round}: {item} outlived {box}");
        }
        Assert.Equal(0, contained);
        for (var round = 1; round <= 40; round++)
        {
            var (parent, child) = ($"parent-{round}", $"child-{round}");
            await a.Counter(parent).IncrementAsync();
            // Activated on the silos that race, so both calls reach their writes at once.
            await b.Counter(parent).ReadAsync();
            await a.Counter(child).ReadAsync();
            var outcomes = await Task.WhenAll(
                Outcome(() => b.Counter(parent).DeleteAsync()),
                Outcome(() => a.Counter(child).ReferAsync(parent)));
            Assert.All(outcomes, o => Assert.True(o is null or ReferenceException, $"round {round}: {o}"));
            if (outcomes.All(o => o is null)) both++;
            // Whatever won, the store agrees: a child that exists has its parent.
            Assert.True(a.Store.Store.Read("Counter", child) is null || a.Store.Store.Read("Counter", parent) is not null, $"round {round}: {child} refers to a deleted {parent}");
        }
        Assert.Equal(0, both);
    }

    private static async Task<Exception?> Outcome(Func<Task> call)
    {
        try
        {
            await call();
            return null;
        }
        catch (Exception e)
        {
            return e;
        }
    }

    [Fact]
    public async Task OnAFullDisk_CommitsFailUnavailable_AndTheStoreSaysSoUntilACommitSucceedsAgain()
    {
        // A small file system of its own, filled up by a file beside the database.
        var directory = Path.Combine(Path.GetTempPath(), "cp-full-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(directory);
        Shell.Must("mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", directory);
        try
        {
            await using var cluster = await StoreCluster.StartAsync(directory);
            long acknowledged = 0;
            acknowledged = await cluster.Counter("before").IncrementAsync();
            var filler = Path.Combine(directory, "filler");
            Fill(filler);

            // Fresh pages have to be appended to the write-ahead log now, and there is no room.
            ControlPlaneException? refused = null;
            for (var i = 0; i < 20_000 && refused is null; i++)
            {
                try
                {
                    await cluster.Counter("fill-" + i).IncrementAsync();
                }
                catch (ControlPlaneException e)
                {
                    refused = e;
                }
            }
            Assert.NotNull(refused);
            Assert.Equal(ErrorCode.Unavailable, refused.Code);
            Assert.NotNull(cluster.Store.Committer.Failure);
            // A transaction that begins, reads and rolls back still works on a full disk: the
            // probe must not take that for recovery.
            Assert.NotNull(cluster.Store.Committer.Probe());
            Assert.NotNull(cluster.Store.Committer.Failure);

            File.Delete(filler);
            Assert.Null(cluster.Store.Committer.Probe());
            Assert.Null(cluster.Store.Committer.Failure);
            Assert.Equal(acknowledged + 1, await cluster.Counter("before").IncrementAsync());
        }
        finally
        {
            Shell.Run("umount", "-l", directory);
            Directory.Delete(directory, recursive: true);
        }
    }

    private static void Fill(string path)
    {
        // Unbuffered, so nothing is left to write when the file is closed.
        using var file = new FileStream(path, FileMode.CreateNew, FileAccess.Write, FileShare.None, bufferSize: 0);
        var chunk = new byte[4096];
        try
        {
            while (true)
            {
                file.Write(chunk);
            }
        }
        catch (IOException)
        {
            // ENOSPC: the file system is full.
        }
    }

    [Theory]
    [InlineData("sqlite")]
    [InlineData("postgres")]
    public async Task ASecondHolderOfAClaim_IsRefusedNamingTheHolder_UntilTheHolderIsDeleted(string provider)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        byte[] value = [10, 0, 0, 7];
        await cluster.Counter("first").ClaimAsync("address/blue", value, value);

        var refused = await Assert.ThrowsAsync<ClaimTakenException>(() => cluster.Counter("second").ClaimAsync("address/blue", value, value));
        Assert.Equal(("Counter", "first"), (refused.Holder.Kind, refused.Holder.Key));
        Assert.Null(cluster.Store.Store.Read("Counter", "second"));
        // Another scope is another namespace of values; a re-write by the holder keeps it.
        await cluster.Counter("second").ClaimAsync("address/green", value, value);
        await cluster.Counter("first").ClaimAsync("address/blue", value, value);
        Assert.Equal(("Counter", "first"), await cluster.Store.Store.FindClaimAsync("address/blue", value) is { } holder ? (holder.Kind, holder.Key) : default);

        await cluster.Counter("first").DeleteAsync();
        Assert.Null(await cluster.Store.Store.FindClaimAsync("address/blue", value));

        await cluster.Counter("second").ClaimAsync("address/blue", value, value);
        Assert.Equal("second", Assert.Single(cluster.Store.Store.ListClaims("address/blue")).Key);
        Assert.Equal("second", (await cluster.Store.Store.FindClaimAsync("address/blue", value))?.Key);
        Assert.Null(await cluster.Store.Store.FindClaimAsync("address/blue", [10, 0, 0, 8]));
    }

    public static TheoryData<string, byte[], byte[], bool> Ranges()
    {
        var data = new TheoryData<string, byte[], byte[], bool>();
        foreach (var provider in new[] { "sqlite", "postgres" })
        {
            data.Add(provider, [5], [5], true);
            data.Add(provider, [0], [3], false);
            data.Add(provider, [0], [4], true);
            data.Add(provider, [9], [20], true);
            data.Add(provider, [11], [20], false);
            data.Add(provider, [0], [255], true);
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Ranges))]
    public async Task OverlappingRanges_AreRefused(string provider, byte[] low, byte[] high, bool overlaps)
    {
        await using var cluster = await StoreCluster.StartAsync(provider: provider);
        await cluster.Counter("held").ClaimAsync("range", [4], [10]);

        var claim = cluster.Counter("asking").ClaimAsync("range", low, high);

        if (overlaps) await Assert.ThrowsAsync<ClaimTakenException>(() => claim);
        else Assert.Equal(1, await claim);
    }

    /// <summary>
    /// A closed SQLite store never opens its database again: a checkpoint (a timer's, or one
    /// called late) would recreate the WAL files while the owner deletes the directory.
    /// </summary>
    [Fact]
    public void AClosedSqliteStore_NeverOpensItsDatabaseAgain()
    {
        var directory = Directory.CreateTempSubdirectory("cp-closed-store-").FullName;
        try
        {
            var store = new SqliteGrainStore(Path.Combine(directory, "controlplane.db"));
            store.Open("silo", 4);
            store.Checkpoint();
            store.Dispose();
            Assert.Equal(["controlplane.db"], Directory.GetFiles(directory).Select(Path.GetFileName));

            store.Checkpoint();

            Assert.Equal(["controlplane.db"], Directory.GetFiles(directory).Select(Path.GetFileName));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// A store whose files cannot be written (made immutable) fails its committing probe as it
    /// fails commits, until they can be again: a probe that rewrote a row with its own bytes
    /// committed nothing and passed. A store whose database file was removed while open commits
    /// nothing (such commits would be lost at the next start) and its probe says why.
    /// </summary>
    [Fact]
    public void ASqliteStore_ThatCannotBeWrittenOrWasRemoved_FailsItsProbeAsItsCommits()
    {
        var directory = Directory.CreateTempSubdirectory("cp-unwritable-").FullName;
        var path = Path.Combine(directory, "controlplane.db");
        string[] files = [path, path + "-wal"];
        try
        {
            using var store = new SqliteGrainStore(path);
            var epochs = store.Open("silo", 4).Epochs;
            void Write(string key) => store.Commit([new WriteRequest { Kind = "test", Key = key, Partition = 0, ExpectedRevision = 0, Data = [1], Epoch = epochs[0] }], new WriteOutcome[1], new Change?[1]);
            Write("a");
            Assert.Null(store.ProbeWritable(epochs, commit: true));

            Shell.Must(["chattr", "+i", .. files]);
            try
            {
                Assert.Equal(ErrorCode.Unavailable, Assert.Throws<ControlPlaneException>(() => Write("b")).Code);
                Assert.StartsWith("the store cannot be written", store.ProbeWritable(epochs, commit: true));
                Assert.StartsWith("the store cannot be written", store.ProbeWritable(epochs, commit: true));
            }
            finally
            {
                Shell.Must(["chattr", "-i", .. files]);
            }
            Assert.Null(store.ProbeWritable(epochs, commit: true));
            Write("c");

            foreach (var file in Directory.GetFiles(directory)) File.Delete(file);
            var gone = Assert.Throws<ControlPlaneException>(() => Write("d"));
            Assert.Equal(ErrorCode.Unavailable, gone.Code);
            Assert.Contains("is gone (removed while the silo ran)", gone.Message);
            Assert.Contains("is gone (removed while the silo ran)", store.ProbeWritable(epochs));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }

    /// <summary>
    /// A SQLite store made before changes recorded the index they moved from opens with its log
    /// as it was (the old records' previous index unknown, read as unchanged) and records it from
    /// then on.
    /// </summary>
    [Fact]
    public async Task ASqliteStoreFromBeforeThePreviousIndex_OpensAndRecordsIt()
    {
        var directory = Directory.CreateTempSubdirectory("cp-old-store-").FullName;
        var path = Path.Combine(directory, "controlplane.db");
        try
        {
            using (var old = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={path};Pooling=False"))
            {
                old.Open();
                using var create = old.CreateCommand();
                create.CommandText = """
                    CREATE TABLE changes (
                        partition INTEGER NOT NULL, revision INTEGER NOT NULL, seq INTEGER NOT NULL,
                        kind TEXT NOT NULL, key TEXT NOT NULL, ns TEXT NOT NULL, idx TEXT NOT NULL,
                        type INTEGER NOT NULL, data BLOB NOT NULL,
                        PRIMARY KEY (partition, revision)) WITHOUT ROWID;
                    """;
                create.ExecuteNonQuery();
            }
            using var store = new SqliteGrainStore(path);
            var partitions = store.Open("silo", 1);
            var outcomes = new WriteOutcome[1];
            var changes = new Change?[1];
            store.Commit([new WriteRequest { Kind = "Thing", Key = "t", Partition = 0, ExpectedRevision = 0, Data = [1], Index = "x", Epoch = partitions.Epochs[0] }], outcomes, changes);
            store.Commit([new WriteRequest { Kind = "Thing", Key = "t", Partition = 0, ExpectedRevision = 1, Data = [2], Index = "y", PreviousIndex = "x", Epoch = partitions.Epochs[0] }], outcomes, changes);

            Assert.Equal("x", changes[0]!.PreviousIndex);
            Assert.Equal([null, "x"], (await store.ReadChangesAsync([0], 10)).Changes.Select(c => c.PreviousIndex));
        }
        finally
        {
            Directory.Delete(directory, recursive: true);
        }
    }
}
