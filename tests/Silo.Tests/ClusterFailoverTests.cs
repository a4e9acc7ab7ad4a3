using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Storage;
using ControlPlane.Storage.Changes;
using ResumeToken = ControlPlane.Silo.Api.ResumeToken;
using Google.Protobuf;
using Grpc.Core;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// Three silos on Redis membership and one PostgreSQL database, started by scripts/cluster.sh
/// as real processes. Clients write through every silo while one silo is killed (SIGKILL) and
/// another is paused (SIGSTOP) past the membership timeout; then the store, the change log and
/// every watcher are checked against what the clients were told.
/// </summary>
[Collection(ClusterCollection.Name)]
public sealed class ClusterFailoverTests(Xunit.Abstractions.ITestOutputHelper output)
{
    private const string Ns = "chaos";
    private const int Writers = 16;
    private const int ObjectsPerWriter = 24;
    private const int Probes = 30;
    // Longer than the silos' grain-call timeout (10 s): once a client gives up on an attempt, that
    // attempt has either run or been dropped, so it cannot land after the retry.
    private static readonly TimeSpan CallTimeout = TimeSpan.FromSeconds(15);
    // UNKNOWN: a write whose grain's silo went away during the call (it may have been made).
    private static readonly StatusCode[] SiloWentAway = [StatusCode.Unavailable, StatusCode.DeadlineExceeded, StatusCode.Unknown];

    [Fact]
    public async Task ThreeSilos_ThroughAKillAndAPause_LoseNoAcknowledgedWrite_KeepOneChainPerObject_AndEveryWatcherSeesEveryChangeOnce()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 3);
        using var admin = new ControlPlaneClient(cluster.Addresses());
        var start = await Fixtures.PositionAsync(admin);
        var watchers = Enumerable.Range(1, 3).Select(silo => new ResumingWatcher(cluster.Addresses(silo), start)).ToList();
        try
        {
            await admin.Namespaces.CreateAsync(Fixtures.Namespace(Ns));
            await admin.Nodes.CreateAsync(Fixtures.Node("node-a"));
            await admin.Networks.CreateAsync(Fixtures.Network("net", 400, "10.40.0.0/16"));
            var probes = await Task.WhenAll(Enumerable.Range(0, Probes).Select(i => admin.Endpoints.CreateAsync(Fixtures.Endpoint(Ns, $"probe-{i}", "net", "node-a"))));

            var ledger = new Ledger();
            using var stopWriters = new CancellationTokenSource();
            var writers = Enumerable.Range(0, Writers).Select(w => Task.Run(() => WriteAsync(cluster.Addresses(w % 3 + 1), w, ledger, stopWriters.Token))).ToList();
            var report = new List<string>();
            // Progress, or the first writer that failed (with its exception).
            async Task Reached(int count)
            {
                var reached = ledger.ReachedAsync(count);
                var failed = await Task.WhenAny([reached, .. writers]);
                await failed;
                if (failed != reached) await reached;
            }

            // SIGKILL silo 1 once a quarter of the writes are in; measure until every probe object
            // (about a third of them lived on silo 1) takes a write again.
            await Reached(2_500);
            var killed = Stopwatch.StartNew();
            var killedPid = cluster.SiloPid(1);
            SiloProcess.Signal(killedPid, 9);
            var moved = await Task.WhenAll(probes.Select(p => FirstWriteAsync(admin, p, killed)));
            var failover = moved.Max();
            report.Add($"failover after SIGKILL: every probe object written again within {failover.TotalMilliseconds:F0} ms (median probe {moved.Order().ElementAt(moved.Length / 2).TotalMilliseconds:F0} ms)");
            Assert.True(failover < TimeSpan.FromSeconds(10), report[^1]);
            // A killed process with a large heap can take a moment to be gone on a loaded machine;
            // cluster.sh refuses to start a silo whose process still runs.
            var gone = Stopwatch.StartNew();
            while (LocalCluster.IsAlive(killedPid) && gone.Elapsed < TimeSpan.FromSeconds(20)) await Task.Delay(50);
            await cluster.StartSiloAsync(1);

            // SIGSTOP silo 2 until the others have declared it dead; change the probes meanwhile.
            await Reached(5_000);
            var paused = cluster.SiloPid(2);
            SiloProcess.Signal(paused, 19);
            var declared = Stopwatch.StartNew();
            // A client whose first silo stops answering (its connections stay open) notices within
            // its keepalive and moves on inside netctl's 10 s (a List activates no grain).
            using (var viaPaused = new ControlPlaneClient(cluster.Addresses(2)))
            {
                var listed = Stopwatch.StartNew();
                await viaPaused.Endpoints.ListAsync(new ListRequest { Namespace = Ns, PageSize = 1 }, Calls.Within(TimeSpan.FromSeconds(10)));
                report.Add($"a call sent to the paused silo answered from another after {listed.ElapsedMilliseconds} ms");
            }
            while (await cluster.MembershipStatusAsync(2) != "Dead")
            {
                Assert.True(declared.Elapsed < TimeSpan.FromSeconds(90), "silo 2 was not declared dead within 90 s");
                await Task.Delay(100);
            }
            report.Add($"paused silo declared dead after {declared.ElapsedMilliseconds} ms");
            var current = await Task.WhenAll(probes.Select(p => Retry(() => admin.Endpoints.UpdateAsync(Labelled(p, "pause", "1"), Calls.Within(CallTimeout)), ledger)));
            SiloProcess.Signal(paused, 18);
            report.Add(await CheckResumedSiloAsync(cluster, 2, paused, current));
            if (!LocalCluster.IsAlive(paused))
            {
                await cluster.StartSiloAsync(2);
            }

            await Reached(10_000);
            await stopWriters.CancelAsync();
            await Task.WhenAll(writers);
            report.Add($"{ledger.Acknowledged} acknowledged writes by {Writers} clients; retried after {string.Join(", ", ledger.Retries.Select(r => $"{r.Key} ×{r.Value}"))}");

            await AssertLedgerMatchesTheStoreAsync(admin, ledger);
            AssertNoAddressHeldTwice(await ListAsync(admin));
            report.Add(await AssertEveryChainUnbrokenAsync(cluster));
            report.Add(await AssertEveryWatcherSawEveryChangeOnceAsync(cluster, start, watchers));
            await AssertDnsFollowsAsync(cluster, admin);
            output.WriteLine(string.Join('\n', report));
        }
        catch (Exception e) when (e is not Xunit.Sdk.XunitException)
        {
            throw new InvalidOperationException(e.Message + "\n" + cluster.Logs(), e);
        }
        finally
        {
            foreach (var watcher in watchers) await watcher.DisposeAsync();
        }
    }

    /// <summary>
    /// With its membership Redis gone, Orleans retries writing the silo's leaving for minutes; a
    /// silo told to stop still ends within its stop limit, saying why, before a supervisor's kill.
    /// </summary>
    [Fact]
    public async Task ASiloToldToStop_WithItsMembershipRedisGone_EndsWithinItsStopLimit_SayingWhy()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 1);
        var silo = cluster.SiloPid(1);
        var redis = int.Parse(cluster.Setting("REDIS_PID"), System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal(0, SiloProcess.Signal(redis, 9));
        while (LocalCluster.IsAlive(redis)) await Task.Delay(20);

        var clock = Stopwatch.StartNew();
        Assert.Equal(0, SiloProcess.Signal(silo, 15));
        while (LocalCluster.IsAlive(silo))
        {
            Assert.True(clock.Elapsed < Hosting.ProcessEnd.StopLimit + TimeSpan.FromSeconds(10), $"the silo still runs {clock.Elapsed} after SIGTERM\n{cluster.Logs()}");
            await Task.Delay(100);
        }
        output.WriteLine($"stopped after {clock.Elapsed}");
        Assert.Contains($"the stop did not finish within {Hosting.ProcessEnd.StopLimit.TotalSeconds:F0} s", cluster.Logs());
    }

    /// <summary>
    /// A membership Redis that restarts empty forgets every silo, and the first silo to start
    /// afterwards writes a table that holds only itself. Orleans kept the older silos' own view:
    /// they called that silo's old incarnation and said SERVING. Each now notices that its row is
    /// gone and stops (exit code 75), to be restarted as a new member.
    /// </summary>
    [Fact]
    public async Task SilosWhoseMembershipTableIsGone_StopToBeRestarted_AndRejoin()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 2);
        var (first, second) = (cluster.SiloPid(1), cluster.SiloPid(2));
        var clock = Stopwatch.StartNew();
        while (!cluster.SiloLogged(1, "is an active cluster member") || !cluster.SiloLogged(2, "is an active cluster member"))
        {
            Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"the guards did not see their rows\n{cluster.Logs()}");
            await Task.Delay(100);
        }

        // Redis loses its data: with no table, no failed silo could be declared dead any more
        // (calls to its grains would fail for good), so every silo stops to be restarted.
        await cluster.RedisAsync("FLUSHALL");
        clock.Restart();
        while (LocalCluster.IsAlive(first) || LocalCluster.IsAlive(second))
        {
            Assert.True(clock.Elapsed < Hosting.MembershipGuard.MembershipCheck * 3, $"a silo still runs {clock.Elapsed} after the table went\n{cluster.Logs()}");
            await Task.Delay(100);
        }
        Assert.True(cluster.SiloLogged(1, "membership table is gone from Redis"), cluster.Logs());
        Assert.True(cluster.SiloLogged(2, "membership table is gone from Redis"), cluster.Logs());

        // One restarted writes a new table; the other, restarted after, joins it, and the cluster serves.
        await cluster.StartSiloAsync(2);
        await cluster.StartSiloAsync(1);
        using var client = new ControlPlaneClient(cluster.Addresses());
        await client.Namespaces.CreateAsync(Fixtures.Namespace("after"), Calls.Within(TimeSpan.FromSeconds(30)));
        Assert.Equal("Active", await cluster.MembershipStatusAsync(1));
        Assert.Equal("Active", await cluster.MembershipStatusAsync(2));
    }

    /// <summary>
    /// A silo given the cluster's membership but another database would have taken the objects
    /// Orleans placed on it into that database (Lists through it missed the others' objects, and
    /// creates through the others failed for a namespace only it could not see). It stops at
    /// start, naming both databases, and the cluster's own silo keeps serving; after a kill of
    /// that silo the binding outlives it for its lease, so a restart on the wrong database is
    /// refused too.
    /// </summary>
    /// <summary>
    /// A silo given another service range and ClusterSet id than its cluster's running silo
    /// (same database, same membership) would hand out service addresses from its own range for
    /// the grains placed on it, and announce another cluster to the ClusterSet. It stops at start
    /// with exit code 2 naming each setting and both values, and the running silo keeps serving.
    /// </summary>
    [Fact]
    public async Task ASiloWithOtherClusterWideSettings_IsRefusedAtStart_NamingEachSetting()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 1);
        using var client = new ControlPlaneClient(cluster.SiloAddress(1));
        await client.Namespaces.CreateAsync(Fixtures.Namespace("shop"), Calls.Within(TimeSpan.FromSeconds(30)));
        string[] args = ["--Silo:Port=0", "--Dns:Enabled=false", $"--Silo:DataDirectory={Path.Combine(cluster.Directory, "other-settings")}", "--Cluster:Membership=redis",
            $"--Cluster:Redis=127.0.0.1:{cluster.Setting("REDIS_PORT")}", "--Cluster:AdvertisedAddress=127.0.0.1",
            "--Store:Provider=postgres", $"--Store:Postgres={cluster.Postgres}", "--Store:SiloId=other-settings",
            "--ControlPlane:ServiceIpv4Cidr=10.97.0.0/16", "--ClusterSet:ClusterId=another"];

        var (code, text) = await HostingTests.RunAsync("ControlPlane.Silo", args);

        Assert.Equal(2, code);
        Assert.Contains("runs with other settings than this silo's: ControlPlane:ServiceIpv4Cidr is '10.96.0.0/16' on the cluster's running silos, '10.97.0.0/16' here; "
            + "ClusterSet:ClusterId is 'default' on the cluster's running silos, 'another' here.", text);
        Assert.DoesNotContain("UnderlayMtu", text);
        await client.Networks.CreateAsync(new Network { Metadata = new ObjectMeta { Name = "net" }, Spec = new NetworkSpec { Vni = 70, Ipv4Cidr = "10.70.0.0/16" } },
            Calls.Within(TimeSpan.FromSeconds(30)));
        var service = await client.Services.CreateAsync(new Service
        {
            Metadata = new ObjectMeta { Name = "web", Namespace = "shop" },
            Spec = new ServiceSpec { Network = "net", Ports = { new ServicePort { Port = 80, Protocol = Protocol.Tcp } } },
        }, Calls.Within(TimeSpan.FromSeconds(30)));
        Assert.StartsWith("10.96.", service.Status.ClusterIps[0], StringComparison.Ordinal);
    }

    [Fact]
    public async Task ASiloOnAnotherDatabase_WithTheClustersMembership_IsRefusedAtStart_NamingBothDatabases()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 1);
        await cluster.QueryAsync("CREATE DATABASE elsewhere");
        using var client = new ControlPlaneClient(cluster.SiloAddress(1));
        await client.Namespaces.CreateAsync(Fixtures.Namespace("shop"), Calls.Within(TimeSpan.FromSeconds(30)));
        var elsewhere = cluster.Postgres.Replace("Database=postgres", "Database=elsewhere", StringComparison.Ordinal);
        var data = Path.Combine(cluster.Directory, "elsewhere");
        string[] args = ["--Silo:Port=0", "--Dns:Enabled=false", $"--Silo:DataDirectory={data}", "--Cluster:Membership=redis",
            $"--Cluster:Redis=127.0.0.1:{cluster.Setting("REDIS_PORT")}", "--Cluster:AdvertisedAddress=127.0.0.1",
            "--Store:Provider=postgres", $"--Store:Postgres={elsewhere}", "--Store:SiloId=elsewhere"];

        var (code, text) = await HostingTests.RunAsync("ControlPlane.Silo", args);

        Assert.Equal(1, code);
        Assert.Contains("cluster 'controlplane' (Cluster:ClusterId, with the membership in Cluster:Redis) runs on another store: database 'postgres' at 127.0.0.1:", text);
        Assert.Contains("this silo's Store:Postgres is database 'elsewhere' at 127.0.0.1:", text);
        Assert.Equal("shop", (await client.Namespaces.GetAsync("", "shop")).Metadata.Name);
        await client.Namespaces.CreateAsync(Fixtures.Namespace("after"), Calls.Within(TimeSpan.FromSeconds(30)));

        Assert.Equal(0, SiloProcess.Signal(cluster.SiloPid(1), 9));
        while (LocalCluster.IsAlive(cluster.SiloPid(1))) await Task.Delay(20);
        (code, text) = await HostingTests.RunAsync("ControlPlane.Silo", args);
        Assert.Equal(1, code);
        Assert.Contains("runs on another store", text);
    }

    [Fact]
    public async Task ASiloOfAnotherCluster_OnTheClustersDatabase_IsRefusedAtStart_NamingBothClusters()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 1);
        using var client = new ControlPlaneClient(cluster.SiloAddress(1));
        await client.Namespaces.CreateAsync(Fixtures.Namespace("shop"), Calls.Within(TimeSpan.FromSeconds(30)));
        // The same Redis and database, and a mistyped ClusterId: a second cluster on one store.
        string[] args = ["--Silo:Port=0", "--Dns:Enabled=false", $"--Silo:DataDirectory={Path.Combine(cluster.Directory, "typo")}",
            "--Cluster:Membership=redis", $"--Cluster:Redis=127.0.0.1:{cluster.Setting("REDIS_PORT")}", "--Cluster:AdvertisedAddress=127.0.0.1",
            "--Cluster:ClusterId=controlplan", "--Store:Provider=postgres", $"--Store:Postgres={cluster.Postgres}", "--Store:SiloId=typo"];

        var (code, text) = await HostingTests.RunAsync("ControlPlane.Silo", args);

        Assert.Equal(1, code);
        Assert.Contains("in use by the silos of another cluster ('controlplane/controlplane'); this silo's is 'controlplane/controlplan'", text);
        await client.Namespaces.CreateAsync(Fixtures.Namespace("after"), Calls.Within(TimeSpan.FromSeconds(30)));
        Assert.Equal(2, (await client.Namespaces.ListAsync(new ListRequest())).Namespaces.Count(n => n.Metadata.Name is "shop" or "after"));
    }

    [Fact]
    public async Task ASiloThatLosesPostgres_SaysNotServing_FailsWritesUnavailable_AndRecoversByItself()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 1);
        using var client = new ControlPlaneClient(cluster.SiloAddress(1));
        var health = new Grpc.Health.V1.Health.HealthClient(client.Invoker);
        var start = await Fixtures.PositionAsync(client);
        await using var watcher = new ResumingWatcher(cluster.SiloAddress(1), start);
        await client.Namespaces.CreateAsync(Fixtures.Namespace("before"));

        await cluster.StopPostgresAsync();

        var refused = await Assert.ThrowsAsync<RpcException>(() => client.Namespaces.CreateAsync(Fixtures.Namespace("during"), Calls.Within(TimeSpan.FromSeconds(20))));
        Assert.Equal(StatusCode.Unavailable, refused.StatusCode);
        var status = await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest());
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing, status.Status);

        await cluster.StartPostgresAsync();

        // Recovery is the silo's own doing: the next writes succeed once the database is back.
        var back = Stopwatch.StartNew();
        while (true)
        {
            try
            {
                await client.Namespaces.CreateAsync(Fixtures.Namespace("after"), Calls.Within(CallTimeout));
                break;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Unavailable && back.Elapsed < TimeSpan.FromSeconds(30))
            {
                await Task.Delay(200);
            }
        }
        Assert.Null((await client.Namespaces.ListAsync(new ListRequest())).Namespaces.FirstOrDefault(n => n.Metadata.Name == "during"));
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest())).Status);
        // The watch never broke for good: it saw both namespaces (and only them) through the outage.
        await watcher.ReceivedAsync(2).WaitAsync(TimeSpan.FromSeconds(30));
        Assert.Equal(["before", "after"], watcher.Changes.Select(c => c.Key));
        Assert.Empty(watcher.Errors);
    }

    /// <summary>
    /// A PostgreSQL that hangs (SIGSTOP) rather than goes away: health answers NOT_SERVING within
    /// seconds, every health call answering in time, and SERVING again once it continues.
    /// </summary>
    [Fact]
    public async Task ASiloWhosePostgresHangs_AnswersHealthPromptly_NotServing_ThenServingAgain()
    {
        await using var cluster = await LocalCluster.StartAsync(silos: 1);
        using var client = new ControlPlaneClient(cluster.SiloAddress(1));
        var health = new Grpc.Health.V1.Health.HealthClient(client.Invoker);
        async Task<Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus> StatusAsync() =>
            (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), Calls.Within(TimeSpan.FromSeconds(5)))).Status;
        async Task<TimeSpan> UntilAsync(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus wanted)
        {
            var clock = Stopwatch.StartNew();
            while (await StatusAsync() != wanted)
            {
                Assert.True(clock.Elapsed < TimeSpan.FromSeconds(30), $"health did not become {wanted} within 30 s");
                await Task.Delay(250);
            }
            return clock.Elapsed;
        }
        Assert.Equal(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving, await StatusAsync());

        await cluster.SignalPostgresAsync(stop: true);
        try
        {
            var notServing = await UntilAsync(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.NotServing);
            Assert.True(notServing < TimeSpan.FromSeconds(10), $"NOT_SERVING after {notServing}");
        }
        finally
        {
            await cluster.SignalPostgresAsync(stop: false);
        }
        await UntilAsync(Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving);
    }

    private static Endpoint Labelled(Endpoint endpoint, string key, string value)
    {
        var copy = endpoint.Clone();
        copy.Metadata.Etag = string.Empty;
        copy.Metadata.Labels[key] = value;
        return copy;
    }

    /// <summary>How long after <paramref name="since"/> started the object first took a write.</summary>
    private static async Task<TimeSpan> FirstWriteAsync(ControlPlaneClient client, Endpoint probe, Stopwatch since)
    {
        while (true)
        {
            try
            {
                await client.Endpoints.UpdateAsync(Labelled(probe, "probe", since.ElapsedTicks.ToString(System.Globalization.CultureInfo.InvariantCulture)), Calls.Within(CallTimeout));
                return since.Elapsed;
            }
            catch (RpcException e) when (SiloWentAway.Contains(e.StatusCode) && since.Elapsed < TimeSpan.FromSeconds(60))
            {
            }
        }
    }

    /// <summary>
    /// Right after SIGCONT, a client of the resumed silo alone: until the silo exits (or is an
    /// active member again), every read it answers must be current, and its health must not be
    /// SERVING while it is not a member.
    /// </summary>
    private static async Task<string> CheckResumedSiloAsync(LocalCluster cluster, int silo, int pid, Endpoint[] current)
    {
        using var pinned = new ControlPlaneClient(cluster.SiloAddress(silo));
        var health = new Grpc.Health.V1.Health.HealthClient(pinned.Invoker);
        var clock = Stopwatch.StartNew();
        int answered = 0, refused = 0, serving = 0;
        while (LocalCluster.IsAlive(pid) && clock.Elapsed < TimeSpan.FromSeconds(20))
        {
            var probe = current[answered % current.Length];
            try
            {
                var read = await pinned.Endpoints.GetAsync(Ns, probe.Metadata.Name, Calls.Within(TimeSpan.FromSeconds(2)));
                Assert.True(long.Parse(read.Metadata.Etag) >= long.Parse(probe.Metadata.Etag),
                    $"the resumed silo answered {probe.Metadata.Name} at etag {read.Metadata.Etag}, older than {probe.Metadata.Etag}");
                answered++;
            }
            catch (RpcException e) when (SiloWentAway.Contains(e.StatusCode))
            {
                refused++;
            }
            try
            {
                var status = (await health.CheckAsync(new Grpc.Health.V1.HealthCheckRequest(), Calls.Within(TimeSpan.FromSeconds(2)))).Status;
                if (status == Grpc.Health.V1.HealthCheckResponse.Types.ServingStatus.Serving)
                {
                    serving++;
                    Assert.Equal("Active", await cluster.MembershipStatusAsync(silo));
                    break;
                }
            }
            catch (RpcException e) when (SiloWentAway.Contains(e.StatusCode))
            {
            }
        }
        var exited = !LocalCluster.IsAlive(pid);
        Assert.True(exited || serving > 0, "the resumed silo neither stopped nor became an active member within 20 s");
        var log = File.ReadAllText(Path.Combine(cluster.Directory, $"silo-{silo}.log"));
        return $"resumed silo: {(exited ? "stopped" : "rejoined")} after {clock.ElapsedMilliseconds} ms; meanwhile {answered} current reads, {refused} refused"
            + (log.Contains("declared dead", StringComparison.OrdinalIgnoreCase) ? " (its log says it was declared dead)" : "");
    }

    /// <summary>What the clients were told, per object: whether it exists, its last etag and generation label.</summary>
    private sealed class Ledger
    {
        private readonly Lock _lock = new();
        private readonly List<(int Count, TaskCompletionSource Reached)> _waiting = [];
        private int _acknowledged;

        public ConcurrentDictionary<string, (bool Exists, string Etag, int Generation)> Objects { get; } = new();

        public ConcurrentDictionary<StatusCode, int> Retries { get; } = new();

        public void Retried(StatusCode status) => Retries.AddOrUpdate(status, 1, (_, n) => n + 1);

        public int Acknowledged => Volatile.Read(ref _acknowledged);

        public void Acknowledge(string name, bool exists, string etag, int generation)
        {
            Objects[name] = (exists, etag, generation);
            var count = Interlocked.Increment(ref _acknowledged);
            lock (_lock)
            {
                foreach (var waiter in _waiting.Where(w => count >= w.Count)) waiter.Reached.TrySetResult();
            }
        }

        public Task ReachedAsync(int count)
        {
            lock (_lock)
            {
                if (Acknowledged >= count) return Task.CompletedTask;
                var reached = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
                _waiting.Add((count, reached));
                return reached.Task.WaitAsync(TimeSpan.FromSeconds(120));
            }
        }
    }

    /// <summary>
    /// One client's writes: its own objects (endpoints and services, so addresses and virtual IPs
    /// are allocated), created, relabelled and deleted at random. A call that fails because a silo
    /// went away is repeated until it is answered; its outcome is then what the ledger records.
    /// </summary>
    private static async Task WriteAsync(string addresses, int writer, Ledger ledger, CancellationToken stop)
    {
        // The client makes a call again on the next silo when its silo goes away mid-call; the
        // first attempt may have committed. Counting those moves tells this writer when an
        // ALREADY_EXISTS or NOT_FOUND answers its own earlier attempt.
        var moves = 0;
        using var client = new ControlPlaneClient(new FailoverCallInvoker(FailoverCallInvoker.Split(addresses)) { FailedOver = (_, _) => Interlocked.Increment(ref moves) });
        int Moves() => Volatile.Read(ref moves);
        var random = new Random(writer);
        var live = new Dictionary<string, (IMessage Object, int Generation)>();
        while (!stop.IsCancellationRequested)
        {
            var index = random.Next(ObjectsPerWriter);
            var name = $"w{writer}-{index}";
            var endpoint = index % 3 != 0;
            if (!live.TryGetValue(name, out var existing))
            {
                var created = endpoint
                    ? (IMessage)await CreateAsync(client.Endpoints, Fixtures.Endpoint(Ns, name, "net", "node-a", labels: ("gen", "0")), ledger, Moves)
                    : await CreateAsync(client.Services, Fixtures.Service(Ns, name, "net"), ledger, Moves);
                live[name] = (created, 0);
                ledger.Acknowledge(name, true, EtagOf(created), 0);
            }
            else if (random.Next(4) == 0)
            {
                await DeleteAsync(endpoint ? client.Endpoints.DeleteAsync : client.Services.DeleteAsync,
                    async n => endpoint ? await client.Endpoints.GetAsync(Ns, n, Calls.Within(CallTimeout)) : await client.Services.GetAsync(Ns, n, Calls.Within(CallTimeout)),
                    name, EtagOf(existing.Object), ledger, Moves);
                live.Remove(name);
                ledger.Acknowledge(name, false, "", 0);
            }
            else
            {
                var generation = existing.Generation + 1;
                var updated = existing.Object is Endpoint e
                    ? (IMessage)await UpdateAsync(client.Endpoints, Relabelled(e, generation), ledger, Moves)
                    : await UpdateAsync(client.Services, Relabelled((Service)existing.Object, generation), ledger, Moves);
                live[name] = (updated, generation);
                ledger.Acknowledge(name, true, EtagOf(updated), generation);
            }
        }
    }

    private static async Task<T> CreateAsync<T, TList>(ResourceClient<T, TList> kind, T resource, Ledger ledger, Func<int> moves)
        where T : class, IMessage<T>, new() where TList : class, IMessage<TList>, new()
    {
        var attempts = 0;
        var before = moves();
        while (true)
        {
            try
            {
                attempts++;
                return await kind.CreateAsync(resource, Calls.Within(CallTimeout));
            }
            catch (RpcException e) when (SiloWentAway.Contains(e.StatusCode))
            {
                ledger.Retried(e.StatusCode);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted)
            {
                // A stale activation (its silo was paused while another took the object over)
                // refused to write and is gone: as the status says, try again.
                ledger.Retried(e.StatusCode);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists && (attempts > 1 || moves() != before))
            {
                // An attempt whose answer was lost did commit; the object is this client's alone.
                var meta = MetaOf(resource);
                return await Retry(() => kind.GetAsync(meta.Namespace, meta.Name, Calls.Within(CallTimeout)), ledger);
            }
        }
    }

    /// <summary>The object with the next generation label, conditional on the etag it was read at.</summary>
    private static T Relabelled<T>(T resource, int generation) where T : IMessage<T>
    {
        var copy = resource.Clone();
        MetaOf(copy).Labels["gen"] = generation.ToString(System.Globalization.CultureInfo.InvariantCulture);
        return copy;
    }

    /// <summary>
    /// A conditional update (on the etag it read), as a careful orchestrator writes: a late
    /// duplicate of an attempt can never land on a newer state. ABORTED means the object changed
    /// since (the silo's controllers write status too, e.g. when the node's lease runs out, or an
    /// attempt whose answer was lost did commit): read it, and if the label is not there yet,
    /// write it again on the new etag.
    /// </summary>
    private static async Task<T> UpdateAsync<T, TList>(ResourceClient<T, TList> kind, T change, Ledger ledger, Func<int> moves)
        where T : class, IMessage<T>, new() where TList : class, IMessage<TList>, new()
    {
        var meta = MetaOf(change);
        var generation = meta.Labels["gen"];
        while (true)
        {
            try
            {
                return await kind.UpdateAsync(change, Calls.Within(CallTimeout));
            }
            catch (RpcException e) when (SiloWentAway.Contains(e.StatusCode))
            {
                ledger.Retried(e.StatusCode);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted)
            {
                ledger.Retried(e.StatusCode);
                var current = await Retry(() => kind.GetAsync(meta.Namespace, meta.Name, Calls.Within(CallTimeout)), ledger);
                if (MetaOf(current).Labels.GetValueOrDefault("gen") == generation) return current;
                change = current.Clone();
                MetaOf(change).Labels["gen"] = generation;
            }
        }
    }

    private static async Task DeleteAsync(Func<string, string, string, CallOptions, Task> delete, Func<string, Task<IMessage>> get, string name, string etag, Ledger ledger, Func<int> moves)
    {
        var attempts = 0;
        var before = moves();
        while (true)
        {
            try
            {
                attempts++;
                await delete(Ns, name, etag, Calls.Within(CallTimeout));
                return;
            }
            catch (RpcException e) when (SiloWentAway.Contains(e.StatusCode))
            {
                ledger.Retried(e.StatusCode);
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.NotFound && (attempts > 1 || moves() != before))
            {
                return;
            }
            catch (RpcException e) when (e.StatusCode == StatusCode.Aborted)
            {
                // Its status changed since it was read: delete it at its current etag.
                ledger.Retried(e.StatusCode);
                try
                {
                    etag = EtagOf(await get(name));
                }
                catch (RpcException gone) when (gone.StatusCode == StatusCode.NotFound && (attempts > 1 || moves() != before))
                {
                    return;
                }
                catch (RpcException away) when (SiloWentAway.Contains(away.StatusCode))
                {
                    // The read met the kill or the pause too: the delete is tried again at the old etag
                    // (ABORTED again if it moved on, and read again then).
                    ledger.Retried(away.StatusCode);
                }
            }
        }
    }

    private static async Task<T> Retry<T>(Func<Task<T>> call, Ledger ledger)
    {
        while (true)
        {
            try
            {
                return await call();
            }
            catch (RpcException e) when (SiloWentAway.Contains(e.StatusCode))
            {
                ledger.Retried(e.StatusCode);
            }
        }
    }

    private static ObjectMeta MetaOf(IMessage resource) => resource switch
    {
        Endpoint e => e.Metadata,
        Service s => s.Metadata,
        _ => throw new ArgumentException(resource.GetType().Name),
    };

    private static string EtagOf(IMessage resource) => MetaOf(resource).Etag;

    private static async Task<(List<Endpoint> Endpoints, List<Service> Services)> ListAsync(ControlPlaneClient client)
    {
        var endpoints = new List<Endpoint>();
        var services = new List<Service>();
        var page = "";
        do
        {
            var list = await client.Endpoints.ListAsync(new ListRequest { Namespace = Ns, PageSize = 1000, PageToken = page });
            endpoints.AddRange(list.Endpoints);
            page = list.NextPageToken;
        }
        while (page.Length > 0);
        do
        {
            var list = await client.Services.ListAsync(new ListRequest { Namespace = Ns, PageSize = 1000, PageToken = page });
            services.AddRange(list.Services);
            page = list.NextPageToken;
        }
        while (page.Length > 0);
        return (endpoints, services);
    }

    private static async Task AssertLedgerMatchesTheStoreAsync(ControlPlaneClient client, Ledger ledger)
    {
        var (endpoints, services) = await ListAsync(client);
        var stored = endpoints.Select(e => (e.Metadata.Name, e.Metadata.Etag, Gen: e.Metadata.Labels.GetValueOrDefault("gen", "0")))
            .Concat(services.Select(s => (s.Metadata.Name, s.Metadata.Etag, Gen: s.Metadata.Labels.GetValueOrDefault("gen", "0"))))
            .Where(o => o.Name.StartsWith('w')).ToDictionary(o => o.Name);
        foreach (var (name, told) in ledger.Objects)
        {
            if (!told.Exists)
            {
                Assert.False(stored.ContainsKey(name), $"{name}: its deletion was acknowledged, yet it exists");
                continue;
            }
            Assert.True(stored.TryGetValue(name, out var found), $"{name}: its creation or last update was acknowledged, yet it is gone");
            // What the client wrote is there; the silo may have written status since (a newer etag).
            Assert.Equal(told.Generation.ToString(System.Globalization.CultureInfo.InvariantCulture), found.Gen);
            Assert.True(long.Parse(found.Etag) >= long.Parse(told.Etag), $"{name}: stored at etag {found.Etag}, older than the acknowledged {told.Etag}");
        }
        Assert.Equal(ledger.Objects.Count(o => o.Value.Exists), stored.Count);
    }

    private static void AssertNoAddressHeldTwice((List<Endpoint> Endpoints, List<Service> Services) live)
    {
        var holders = live.Endpoints.SelectMany(e => e.Status.Ips.Select(ip => (Ip: IPAddress.Parse(ip), Holder: "endpoint " + e.Metadata.Name)))
            .Concat(live.Services.SelectMany(s => s.Status.ClusterIps.Select(ip => (Ip: IPAddress.Parse(ip), Holder: "service " + s.Metadata.Name))))
            .ToList();
        Assert.NotEmpty(holders);
        var shared = holders.GroupBy(h => h.Ip).Where(g => g.Count() > 1).Select(g => $"{g.Key}: {string.Join(", ", g.Select(h => h.Holder))}").ToList();
        Assert.True(shared.Count == 0, "addresses held twice: " + string.Join("; ", shared));
    }

    /// <summary>
    /// Every object's history in the change log: each change replaced the revision before it (a
    /// re-creation after a delete starts from 0), so no write was made on a stale state and no
    /// two silos wrote one object concurrently.
    /// </summary>
    private static async Task<string> AssertEveryChainUnbrokenAsync(LocalCluster cluster)
    {
        var rows = await cluster.QueryAsync("SELECT kind, key, revision, prev, type, writer FROM cp_changes ORDER BY kind, key, revision");
        var broken = new List<string>();
        var objects = 0;
        var handovers = 0;
        string? last = null;
        long previous = 0;
        var deleted = false;
        string? writer = null;
        foreach (var f in rows.Select(r => r.Split('|')))
        {
            var id = f[0] + "/" + f[1];
            var (revision, prev, type) = (long.Parse(f[2]), long.Parse(f[3]), (ChangeType)int.Parse(f[4]));
            if (id != last)
            {
                (last, previous, deleted, writer) = (id, 0, false, f[5]);
                objects++;
            }
            var expected = deleted ? 0 : previous;
            if (prev != expected) broken.Add($"{id}@{revision} (by {f[5]}) replaced {prev}, but the revision before it was {expected}");
            if (f[5] != writer) handovers++;
            (previous, deleted, writer) = (revision, type == ChangeType.Deleted, f[5]);
        }
        Assert.True(broken.Count == 0, $"{broken.Count} broken links: {string.Join("; ", broken.Take(10))}");
        return $"change log: {rows.Length} changes of {objects} objects, every chain unbroken; an object's writer changed {handovers} times";
    }

    /// <summary>Each watcher saw exactly the change log after its start, each change once, each object's changes in order.</summary>
    private static async Task<string> AssertEveryWatcherSawEveryChangeOnceAsync(LocalCluster cluster, string start, List<ResumingWatcher> watchers)
    {
        var partitions = int.Parse((await cluster.QueryAsync("SELECT value FROM cp_meta WHERE name = 'partitions'"))[0]);
        var store = ulong.Parse((await cluster.QueryAsync("SELECT value FROM cp_meta WHERE name = 'store_id'"))[0], System.Globalization.NumberStyles.AllowHexSpecifier);
        var from = ResumeToken.Decode(start, store, partitions);
        var kinds = string.Join(',', Api.ResourceKinds.All.Select(k => $"'{k.Name}'"));
        var logged = (await cluster.QueryAsync($"SELECT partition, revision, kind, key FROM cp_changes WHERE kind IN ({kinds}) ORDER BY partition, revision"))
            .Select(r => r.Split('|')).Where(f => long.Parse(f[1]) > from[int.Parse(f[0])])
            .Select(f => (Kind: f[2], Key: f[3], Revision: long.Parse(f[1]))).ToList();
        var expected = logged.GroupBy(c => (c.Kind, c.Key)).ToDictionary(g => g.Key, g => g.Select(c => c.Revision).ToList());
        foreach (var watcher in watchers)
        {
            await watcher.ReceivedAsync(logged.Count).WaitAsync(TimeSpan.FromSeconds(60));
            Assert.Empty(watcher.Errors);
            var seen = watcher.Changes;
            Assert.Equal(logged.Count, seen.Count);
            var perObject = seen.GroupBy(c => (c.Kind, c.Key)).ToDictionary(g => g.Key, g => g.Select(c => c.Revision).ToList());
            Assert.Equal(expected.Count, perObject.Count);
            foreach (var (id, revisions) in expected)
            {
                Assert.True(perObject.TryGetValue(id, out var got), $"{id}: never seen");
                Assert.Equal(revisions, got);
            }
        }
        return $"watchers: each saw all {logged.Count} changes once, in order; resumed {string.Join("/", watchers.Select(w => w.Resumes))} times";
    }

    /// <summary>The DNS server followed the silos through both failures: a service created now resolves.</summary>
    private static async Task AssertDnsFollowsAsync(LocalCluster cluster, ControlPlaneClient client)
    {
        var service = await client.Services.CreateAsync(Fixtures.Service(Ns, "after", "net"));
        var vip = service.Status.ClusterIps[0];
        var clock = Stopwatch.StartNew();
        string answer;
        do
        {
            answer = await Dig(cluster.Setting("DNS_PORT"), $"after.{Ns}.svc.cluster.local");
            if (answer == vip) return;
            await Task.Delay(100);
        }
        while (clock.Elapsed < TimeSpan.FromSeconds(15));
        Assert.Fail($"the DNS server answers '{answer}' for the new service, not {vip}");
    }

    private static async Task<string> Dig(string port, string name)
    {
        var info = new ProcessStartInfo("dig") { RedirectStandardOutput = true };
        foreach (var arg in (string[])["@127.0.0.1", "-p", port, "+short", "+tries=1", "+time=1", name, "A"]) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output.Trim();
    }
}

[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ClusterCollection
{
    public const string Name = "multi-silo clusters";
}
