using ControlPlane.Storage.Errors;
using ControlPlane.Storage.Postgres;
using Npgsql;

namespace ControlPlane.Storage.Tests;

/// <summary>
/// Which silos may share one PostgreSQL store: any number of one cluster with shared membership,
/// or one silo with embedded membership alone (a second would be a second cluster activating the
/// same grains). Checked on a real server, with the lock every silo holds while it runs.
/// </summary>
public sealed class StoreSharingTests
{
    private const long ClusterLock = 0x43505f434c555354;

    [Fact]
    public void ASoleSilo_HasTheStoreToItself_AndSharingSilos_ShareIt()
    {
        var database = ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase();
        using (var sole = new PostgresGrainStore(database, sole: true))
        {
            sole.Open("a", 4);

            using var second = new PostgresGrainStore(database, sole: true);
            var alone = Assert.Throws<ControlPlaneException>(() => second.Open("b", 4));
            using var shared = new PostgresGrainStore(database);
            var beside = Assert.Throws<ControlPlaneException>(() => shared.Open("c", 4));

            Assert.Equal(ErrorCode.FailedPrecondition, alone.Code);
            Assert.Contains("Cluster:Membership=localhost", alone.Message);
            Assert.Contains("Store:Postgres", alone.Message);
            Assert.Equal(ErrorCode.FailedPrecondition, beside.Code);
            Assert.Contains("in use by a silo with Cluster:Membership=localhost", beside.Message);
            Assert.Null(sole.ProbeWritable([0, 0, 0, 0], commit: true));
        }

        // Once the sole silo has stopped, a cluster's silos open the store side by side, and a sole one cannot join them.
        using var first = new PostgresGrainStore(database);
        using var other = new PostgresGrainStore(database);
        first.Open("d", 4);
        other.Open("e", 4);
        using var late = new PostgresGrainStore(database, sole: true);

        Assert.Equal(ErrorCode.FailedPrecondition, Assert.Throws<ControlPlaneException>(() => late.Open("f", 4)).Code);
        Assert.Null(first.ProbeWritable([0, 0, 0, 0], commit: true));
        Assert.Null(other.ProbeWritable([0, 0, 0, 0], commit: true));
    }

    /// <summary>
    /// A caller is told why the store failed in one line: the server's SQLSTATE and message, not
    /// the driver's detail or its advice to operators (which the log keeps).
    /// </summary>
    [Fact]
    public void AStoreFailure_ReachesTheCallerAsOneLine()
    {
        var restarting = new PostgresException("the database system is not yet accepting connections", "FATAL", "FATAL", "57P03",
            detail: "Consistent recovery state has not been yet reached.");
        Assert.Contains("DETAIL", restarting.Message);
        Assert.Equal("57P03: the database system is not yet accepting connections", PostgresGrainStore.Reason(restarting));
        Assert.Equal("Failed to connect to 127.0.0.1:1", PostgresGrainStore.Reason(new NpgsqlException("Failed to connect to 127.0.0.1:1\n---> inner")));
    }

    /// <summary>
    /// Silos that share a store are one cluster's: a silo given another ServiceId or ClusterId (a
    /// typo) would be a second cluster activating the same grains, so it does not start, and says
    /// which cluster holds the store. Once that cluster has stopped, another may take the store.
    /// </summary>
    [Fact]
    public void SilosOfAnotherCluster_DoNotStartOnAStoreInUse_AndAreToldWhose()
    {
        var database = ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase();
        var other = new PostgresGrainStore(database, cluster: "controlplane/other");
        using (var first = new PostgresGrainStore(database, cluster: "controlplane/east"))
        using (var second = new PostgresGrainStore(database, cluster: "controlplane/east"))
        {
            first.Open("a", 4);
            second.Open("b", 4);
            var refused = Assert.Throws<ControlPlaneException>(() => other.Open("c", 4));
            Assert.Equal(ErrorCode.FailedPrecondition, refused.Code);
            Assert.Contains("in use by the silos of another cluster ('controlplane/east'); this silo's is 'controlplane/other'", refused.Message);
            Assert.Null(first.ProbeWritable([0, 0, 0, 0], commit: true));
            Assert.Null(second.ProbeWritable([0, 0, 0, 0], commit: true));
        }
        other.Dispose();

        using var later = new PostgresGrainStore(database, cluster: "controlplane/other");
        later.Open("d", 4);
        Assert.Null(later.ProbeWritable([0, 0, 0, 0], commit: true));
    }

    /// <summary>
    /// Silos sharing a store publish the changes they read from its log, their own included: one
    /// this silo committed keeps what was stamped on it in memory (its commit time, for the watch
    /// lag, and its write's trace), which the log does not hold.
    /// </summary>
    [Fact]
    public void AChangeReadBackFromTheLog_KeepsItsCommitTimeAndTrace_OnTheSiloThatCommittedIt()
    {
        var database = ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase();
        using var store = new PostgresGrainStore(database);
        using var other = new PostgresGrainStore(database);
        store.Open("a", 4);
        other.Open("b", 4);
        var trace = new System.Diagnostics.ActivityContext(System.Diagnostics.ActivityTraceId.CreateRandom(), System.Diagnostics.ActivitySpanId.CreateRandom(), System.Diagnostics.ActivityTraceFlags.Recorded);
        var changes = new Change?[1];
        store.Commit([new WriteRequest { Kind = "test", Key = "k", Partition = 1, ExpectedRevision = 0, Data = [1] }], new WriteOutcome[1], changes);
        // As the group committer stamps a change once its commit returns.
        (changes[0]!.CommittedAt, changes[0]!.TraceContext) = (12345, trace);

        var read = Assert.Single(store.ReadChanges([0, 0, 0, 0], 10).Changes);
        Assert.Equal(("k", 12345L, trace), (read.Key, read.CommittedAt, read.TraceContext));
        var elsewhere = Assert.Single(other.ReadChanges([0, 0, 0, 0], 10).Changes);
        Assert.Equal(("k", 0L), (elsewhere.Key, elsewhere.CommittedAt));
    }

    /// <summary>
    /// A silo whose lock connection ends (PostgreSQL restarted, the session killed) takes the lock
    /// again when it reconnects. If another cluster's silo took it in between, this one writes
    /// nothing (commits are UNAVAILABLE, its health probe fails) until it holds the lock again.
    /// </summary>
    [Fact]
    public async Task ASilo_WhoseLockAnotherClusterTookMeanwhile_WritesNothing_UntilItHoldsItAgain()
    {
        var database = ControlPlane.Tests.Shared.PostgresServer.Instance.CreateDatabase();
        using var store = new PostgresGrainStore(database, sole: true);
        store.Open("a", 4);
        Assert.Null(store.ProbeWritable([0, 0, 0, 0], commit: true));

        // Unpooled, so that its session (and the lock) ends when it is disposed.
        await using (var intruder = new NpgsqlConnection(database + ";Pooling=false"))
        {
            await intruder.OpenAsync();
            // End the silo's lock session, and take the lock the moment it is free (the silo waits before it reconnects).
            await Scalar(intruder, $"SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND objid = {ClusterLock & 0xffffffff} AND granted AND pid <> pg_backend_pid()");
            await Scalar(intruder, $"SELECT pg_advisory_lock({ClusterLock})");

            var refused = await EventuallyAsync(() => store.ProbeWritable([0, 0, 0, 0], commit: true), reason => reason is not null);
            Assert.Contains("in use by another silo", refused);
            var write = new WriteRequest { Kind = "test", Key = "k", Partition = 0, ExpectedRevision = 0, Data = [1] };
            var error = Assert.Throws<ControlPlaneException>(() => store.Commit([write], new WriteOutcome[1], new Change?[1]));
            Assert.Equal(ErrorCode.Unavailable, error.Code);
            Assert.Equal("0", await Scalar(intruder, "SELECT count(*) FROM cp_objects"));
        }

        Assert.Null(await EventuallyAsync(() => store.ProbeWritable([0, 0, 0, 0], commit: true), reason => reason is null));
    }

    [Fact]
    public void AStoreThatDoesNotAnswer_IsUnavailable_NamingTheSettingWithoutItsPassword()
    {
        using var store = new PostgresGrainStore($"Host=127.0.0.1;Port={Ports.Free()};Username=postgres;Password=hunter2;Database=postgres;Timeout=2", sole: true);

        var error = Assert.Throws<ControlPlaneException>(() => store.Open("a", 4));

        Assert.Equal(ErrorCode.Unavailable, error.Code);
        Assert.StartsWith("the store cannot be reached (Store:Postgres Host=127.0.0.1;", error.Message);
        Assert.Contains("Password=*****", error.Message);
        Assert.EndsWith("; start it, or correct the setting", error.Message);
        Assert.DoesNotContain("hunter2", error.Message);
    }

    private static async Task<string> Scalar(NpgsqlConnection connection, string sql)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        return Convert.ToString(await command.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) ?? string.Empty;
    }

    /// <summary>Asks until the answer satisfies <paramref name="done"/> (the store's listener reconnects in its own time), for at most 15 seconds.</summary>
    private static async Task<string?> EventuallyAsync(Func<string?> ask, Func<string?, bool> done)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(15));
        while (true)
        {
            var answer = ask();
            if (done(answer)) return answer;
            await Task.Delay(TimeSpan.FromMilliseconds(100), timeout.Token);
        }
    }
}
