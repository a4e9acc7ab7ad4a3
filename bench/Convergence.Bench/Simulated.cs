using System.Buffers.Text;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.InteropServices;
using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Storage;
using ControlPlane.Storage.GrainStorage;
using Google.Protobuf;
using Grpc.Core;
using static ControlPlane.NodeAgent.Tests.PolicyTruthTableTests;

namespace ControlPlane.Convergence.Bench;

/// <summary>
/// Part 2: simulated node agents against a separate Release silo process. Each simulated agent
/// keeps one Watch stream (every kind, bookmarks every 5 s) over one of a few shared HTTP/2
/// connections, takes the newest resume token it has seen as its programmed position (it
/// "programs" instantly), reports it as soon as it moves (one report in flight per node, the
/// newest position next) and again every REPEAT_SECONDS (5, as the real agent; 0: never), and
/// heartbeats every lease/3. Policy changes at a fixed rate, each followed by WaitProgrammed.
/// The same changes on a fresh silo without nodes are the reference (both silos first make
/// <see cref="WarmUpChanges"/> changes before any node exists, unmeasured).
/// </summary>
internal static class Simulated
{
    private const int Channels = 8;
    private const int Policies = 10;
    private static readonly TimeSpan Idle = TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("IDLE_SECONDS"), out var s) ? s : 30);
    private static readonly TimeSpan Repeat = TimeSpan.FromSeconds(int.TryParse(Environment.GetEnvironmentVariable("REPEAT_SECONDS"), out var r) ? r : 5);
    private const double ChangesPerSecond = 10;
    private const int WarmUpChanges = 100;

    public static async Task RunAsync(string siloDll, int nodes, int changes, CancellationToken stop)
    {
        var rows = new List<string>();
        List<double> waits, referenceWaits;
        int failures, referenceFailures;
        List<ChangeRecord> records;
        ConvergenceStatusResponse status;
        Agents agents;
        double changesCpu, referenceCpu;
        var logs = new List<(string Silo, List<string> Lines)>();

        await using (var silo = await SiloProcess.StartAsync(siloDll, stop))
        {
            logs.Add(("with nodes", silo.Output));
            using var client = new ControlPlaneClient(silo.Address);
            await SetUpAsync(client, stop);
            // Settle after the start (JIT, the first calls), then the idle baseline.
            await Task.Delay(TimeSpan.FromSeconds(3), stop);
            var window = new Window(silo.Meter);
            await Task.Delay(Idle, stop);
            rows.Add(window.End("idle, no nodes"));

            window = new Window(silo.Meter);
            var clock = Stopwatch.StartNew();
            await Parallel.ForEachAsync(Enumerable.Range(0, nodes), new ParallelOptions { MaxDegreeOfParallelism = 32, CancellationToken = stop }, async (i, token) =>
                await client.Nodes.CreateAsync(new Node { Metadata = new ObjectMeta { Name = NodeName(i) }, Spec = new NodeSpec { UnderlayIp = $"10.200.{i / 250}.{i % 250 + 1}" } },
                    Calls.Within(TimeSpan.FromSeconds(30), token)));
            var created = clock.Elapsed.TotalSeconds;
            agents = new Agents(silo.Address, nodes, Repeat, stop) { Phase = "start until counted" };
            try
            {
                await Stats.WaitCountedAsync(client, nodes, TimeSpan.FromSeconds(180), stop);
                var countedAfter = clock.Elapsed.TotalSeconds - created;
                rows.Add(window.End($"{nodes:N0} nodes created ({created:F1} s), agents started until all counted ({countedAfter:F1} s)"));

                agents.Phase = "settle";
                await Task.Delay(TimeSpan.FromSeconds(3), stop);
                agents.Phase = "idle";
                var reportsBefore = agents.Reports;
                var movesBefore = agents.Moves;
                window = new Window(silo.Meter);
                await Task.Delay(Idle, stop);
                rows.Add(window.End($"{nodes:N0} idle simulated nodes ({(agents.Reports - reportsBefore) / Idle.TotalSeconds:F0} reports/s; " +
                    $"{(agents.Moves - movesBefore) / (double)nodes:F1} position moves per node)"));

                agents.Phase = "changes";
                reportsBefore = agents.Reports;
                window = new Window(silo.Meter);
                agents.Recording = true;
                records = await ChangesAsync(client, changes, stop);
                rows.Add(window.End($"{changes} changes + WaitProgrammed, {nodes:N0} nodes ({agents.Reports - reportsBefore:N0} reports)"));
                changesCpu = window.SiloCpu;
                status = await client.ConvergenceStatusAsync();
                // The last reports' responses can arrive after WaitProgrammed's (the silo hands a report on before it answers).
                await Task.Delay(TimeSpan.FromSeconds(1), stop);
                agents.Recording = false;
                (waits, failures) = Summary(records);
                agents.Phase = "stopping";
            }
            finally
            {
                await agents.DisposeAsync();
            }
        }

        await using (var reference = await SiloProcess.StartAsync(siloDll, stop))
        {
            logs.Add(("reference", reference.Output));
            using var client = new ControlPlaneClient(reference.Address);
            await SetUpAsync(client, stop);
            await Task.Delay(TimeSpan.FromSeconds(3), stop);
            var window = new Window(reference.Meter);
            (referenceWaits, referenceFailures) = Summary(await ChangesAsync(client, changes, stop));
            rows.Add(window.End($"reference: fresh silo, 0 nodes, {changes} changes + WaitProgrammed"));
            referenceCpu = window.SiloCpu;
        }

        Console.WriteLine($"### Simulated nodes: {nodes:N0} agents against a Release silo process ({Environment.ProcessorCount} cores, shared with this process)");
        Console.WriteLine();
        Console.WriteLine($"Each simulated agent: one Watch (all kinds, bookmarks every 5 s) over {Channels} shared HTTP/2 connections (unix socket); " +
            $"reports the newest resume token as soon as it moves (one report in flight, the newest next){(Repeat > TimeSpan.Zero ? $" and every {Repeat.TotalSeconds:0} s as the real agent" : "")}; heartbeats every lease/3. " +
            $"{changes} NetworkPolicy updates at {ChangesPerSecond:0}/s ({Policies} policies in turn), each followed by WaitProgrammed (timeout 30 s).");
        Console.WriteLine();
        Console.WriteLine("| run | WaitProgrammed p50 ms | p90 | p99 | max | n | failed |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {nodes:N0} simulated nodes | {Stats.Cells(waits)} | {failures} |");
        Console.WriteLine($"| reference: 0 nodes | {Stats.Cells(referenceWaits)} | {referenceFailures} |");
        Console.WriteLine();
        Breakdown(records, agents);
        var counted = status.Nodes.Where(n => n.Counted).ToList();
        var sampled = status.Nodes.Where(n => n.LatencySamples > 0).ToList();
        Console.WriteLine("Commit → programmed per node from Convergence/Status at the end, ms (aggregated over the nodes):");
        Console.WriteLine();
        Console.WriteLine("| nodes counted | nodes with samples | samples per node (median) | median of node p50s | p90 of node p50s | median of node p99s | max of node p99s | max of node maxima | changes_waiting |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        Console.WriteLine($"| {counted.Count} | {sampled.Count} | {Stats.At(sampled.Select(n => (double)n.LatencySamples), 0.5):F0} | {Stats.Ms(Stats.At(sampled.Select(n => n.LatencyP50Ms), 0.5))} | " +
            $"{Stats.Ms(Stats.At(sampled.Select(n => n.LatencyP50Ms), 0.9))} | {Stats.Ms(Stats.At(sampled.Select(n => n.LatencyP99Ms), 0.5))} | " +
            $"{Stats.Ms(Stats.At(sampled.Select(n => n.LatencyP99Ms), 1))} | {Stats.Ms(Stats.At(sampled.Select(n => n.LatencyMaxMs), 1))} | {status.ChangesWaiting} |");
        Console.WriteLine();
        Console.WriteLine($"Silo process CPU (utime + stime) and memory (VmRSS at the end of the window), from /proc; both silos made {WarmUpChanges} unmeasured warm-up changes (no nodes yet) first; this process runs the simulated agents (or the writer alone):");
        Console.WriteLine();
        Console.WriteLine("| phase | seconds | silo CPU s | silo CPU % of one core | silo RSS MiB | bench process CPU s | load average (1 min) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var row in rows) Console.WriteLine(row);
        Console.WriteLine();
        Console.WriteLine($"Silo CPU per change: {1000 * changesCpu / changes:F1} ms with {nodes:N0} nodes, {1000 * referenceCpu / changes:F1} ms without; " +
            $"the nodes' share per node and change: {1e6 * (changesCpu - referenceCpu) / changes / nodes:F0} µs (its event, its report).");
        Console.WriteLine();
        Console.WriteLine($"Simulated agents: {agents.Reports:N0} reports sent, {agents.ReportErrors} failed, {agents.Heartbeats:N0} heartbeats ({agents.HeartbeatErrors} failed), {agents.WatchRestarts} watch restarts.");
        foreach (var (phase, what, count) in agents.ErrorCounts) Console.WriteLine($"- {phase}: {count} {what}");
        foreach (var line in agents.Errors.Take(5)) Console.WriteLine($"- first: {line}");
        foreach (var (name, lines) in logs)
        {
            List<string> problems;
            lock (lines) problems = [.. lines.Where(l => l.StartsWith("warn:", StringComparison.Ordinal) || l.StartsWith("fail:", StringComparison.Ordinal) || l.StartsWith("crit:", StringComparison.Ordinal))];
            Console.WriteLine($"Silo log ({name}): {problems.Count} entries at warn/fail/crit.");
            foreach (var line in problems.Distinct().Take(8)) Console.WriteLine($"- {line}");
        }
    }

    private static string NodeName(int i) => $"sim-{i:D4}";

    /// <summary>
    /// Namespaces x and y and the policies the changes rewrite; then warm-up changes, so that both
    /// silos have compiled the write and wait paths before anything is measured.
    /// </summary>
    private static async Task SetUpAsync(ControlPlaneClient client, CancellationToken stop)
    {
        foreach (var ns in (string[])["x", "y"])
        {
            await client.Namespaces.CreateAsync(new Namespace { Metadata = new ObjectMeta { Name = ns, Labels = { ["ns"] = ns } } });
        }
        for (var k = 0; k < Policies; k++)
        {
            await client.NetworkPolicies.CreateAsync(Policy("x", $"p-{k}", Select("pod", $"p{k}"), types: ["Ingress"], ingress: [FromY()]));
        }
        await ChangesAsync(client, WarmUpChanges, stop);
    }

    private static NetworkPolicyRule FromY() => Rule([new NetworkPolicyPeer { NamespaceSelector = Select("ns", "y") }]);

    /// <summary>
    /// <paramref name="count"/> policy updates at <see cref="ChangesPerSecond"/> (open loop), each
    /// followed by WaitProgrammed; the milliseconds from each Update's return to the wait's.
    /// </summary>
    private static async Task<List<ChangeRecord>> ChangesAsync(ControlPlaneClient client, int count, CancellationToken stop)
    {
        var latest = new Task<NetworkPolicy>[Policies];
        for (var k = 0; k < Policies; k++) latest[k] = client.NetworkPolicies.GetAsync("x", $"p-{k}");
        var records = new List<ChangeRecord>();
        var errors = new List<string>();
        var running = new List<Task>();
        var clock = Stopwatch.StartNew();
        for (var i = 0; i < count; i++)
        {
            var due = TimeSpan.FromSeconds(i / ChangesPerSecond);
            // One reading of the clock: a second one could be past due, and a wait of -1 ms is infinite.
            if (due - clock.Elapsed is var wait && wait > TimeSpan.Zero) await Task.Delay(wait, stop);
            var k = i % Policies;
            var previous = latest[k];
            var next = new TaskCompletionSource<NetworkPolicy>(TaskCreationOptions.RunContinuationsAsynchronously);
            latest[k] = next.Task;
            var open = i / Policies % 2 == 1;
            running.Add(Task.Run(async () =>
            {
                try
                {
                    var policy = (await previous).Clone();
                    policy.Spec.Ingress.Clear();
                    if (open) policy.Spec.Ingress.Add(FromY());
                    var updated = await client.NetworkPolicies.UpdateAsync(policy, Calls.Within(TimeSpan.FromSeconds(10), stop));
                    next.SetResult(updated);
                    var t0 = Stopwatch.GetTimestamp();
                    await client.WaitProgrammedAsync(new WaitProgrammedRequest
                    {
                        Kind = Kind.NetworkPolicy, Namespace = "x", Name = updated.Metadata.Name, Etag = updated.Metadata.Etag, TimeoutSeconds = 30,
                    }, Calls.Within(TimeSpan.FromSeconds(35), stop));
                    var waited = Stopwatch.GetTimestamp();
                    lock (records) records.Add(new ChangeRecord(Partitioner.PartitionOf(Kinds.NetworkPolicy, ObjectKeys.Of("x", updated.Metadata.Name), Partitions),
                        long.Parse(updated.Metadata.Etag, CultureInfo.InvariantCulture), t0, waited));
                }
                catch (RpcException e) when (!stop.IsCancellationRequested)
                {
                    next.TrySetException(e);
                    lock (records)
                    {
                        records.Add(new ChangeRecord(-1, 0, 0, null));
                        if (errors.Count < 5) errors.Add($"{e.StatusCode}: {e.Status.Detail}");
                    }
                }
            }, stop));
        }
        await Task.WhenAll(running);
        foreach (var error in errors) Console.Error.WriteLine($"change failed: {error}");
        return records;
    }

    /// <summary>One change: the partition and revision it committed at, when its Update returned and its WaitProgrammed (null: failed).</summary>
    private sealed record ChangeRecord(int Partition, long Revision, long Returned, long? Waited);

    private static (List<double> Waits, int Failures) Summary(List<ChangeRecord> records) =>
        ([.. records.Where(r => r.Waited is not null).Select(r => Stats.Between(r.Returned, r.Waited!.Value))], records.Count(r => r.Waited is null));

    /// <summary>Partitions of the silo's new store (the default).</summary>
    private static readonly int Partitions = new StoreOptions().Partitions;

    /// <summary>
    /// Where the time of each change went, from its Update's return: every simulated node had the
    /// event (its watch delivered a position covering the change), every node's report covering it
    /// had returned (the silo took it; the convergence grain handles it after), WaitProgrammed returned.
    /// </summary>
    private static void Breakdown(List<ChangeRecord> records, Agents agents)
    {
        var decoded = new Dictionary<string, long[]>(StringComparer.Ordinal);
        long[] Revisions(string token)
        {
            if (!decoded.TryGetValue(token, out var revisions)) decoded[token] = revisions = Decode(token);
            return revisions;
        }
        var median = new List<double>();
        var delivered = new List<double>();
        var reported = new List<double>();
        var incomplete = 0;
        foreach (var change in records.Where(r => r.Waited is not null))
        {
            var times = new List<double>();
            var reports = new List<double>();
            foreach (var node in agents.Nodes)
            {
                var seen = node.Seen.FirstOrDefault(m => Revisions(m.Token)[change.Partition] >= change.Revision);
                var sent = node.Sent.FirstOrDefault(m => Revisions(m.Token)[change.Partition] >= change.Revision);
                if (seen.Token is null || sent.Token is null) continue;
                times.Add(Stats.Between(change.Returned, seen.Time));
                reports.Add(Stats.Between(change.Returned, sent.Time));
            }
            if (times.Count < agents.Nodes.Count)
            {
                incomplete++;
                continue;
            }
            median.Add(Stats.At(times, 0.5));
            delivered.Add(times.Max());
            reported.Add(reports.Max());
        }
        Console.WriteLine("Where the time went, per change, ms from the Update's return (from the simulated agents' side; negative: before the Update returned):");
        Console.WriteLine();
        Console.WriteLine("| step | p50 | p90 | p99 | max | n |");
        Console.WriteLine("|---|---|---|---|---|---|");
        Console.WriteLine($"| half the nodes had the watch event | {Stats.Cells(median)} |");
        Console.WriteLine($"| every node had the watch event | {Stats.Cells(delivered)} |");
        Console.WriteLine($"| every node's report covering it had returned | {Stats.Cells(reported)} |");
        Console.WriteLine($"| WaitProgrammed returned | {Stats.Cells(Summary(records).Waits)} |");
        if (incomplete > 0) Console.WriteLine($"\n({incomplete} changes left out: some node's log does not cover them)");
        Console.WriteLine();
    }

    /// <summary>A resume token's revision per partition (version byte, varint count, varints; URL-safe base64).</summary>
    private static long[] Decode(string token)
    {
        var bytes = Base64Url.DecodeFromChars(token);
        var at = 1;
        long Varint()
        {
            long value = 0;
            for (var shift = 0; ; shift += 7)
            {
                var b = bytes[at++];
                value |= (long)(b & 0x7f) << shift;
                if (b < 0x80) return value;
            }
        }
        var revisions = new long[Varint()];
        for (var i = 0; i < revisions.Length; i++) revisions[i] = Varint();
        return revisions;
    }

    /// <summary>
    /// Watch/Watch as a stream of resume tokens: an agent that programs instantly needs nothing
    /// else of an event, so the rest is skipped rather than parsed (less client CPU beside the silo).
    /// </summary>
    private static readonly Method<WatchRequest, string> WatchTokens = new(MethodType.ServerStreaming, "controlplane.v1.Watch", "Watch",
        Marshallers.Create(r => r.ToByteArray(), WatchRequest.Parser.ParseFrom),
        Marshallers.Create<string>(_ => throw new NotSupportedException(), TokenOf));

    /// <summary>WatchEvent.resume_token (field 15) of an encoded event; empty when it has none.</summary>
    private static string TokenOf(byte[] message)
    {
        var input = new CodedInputStream(message);
        var token = "";
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == WatchEvent.ResumeTokenFieldNumber) token = input.ReadString();
            else input.SkipLastField();
        }
        return token;
    }

    /// <summary>The simulated agents.</summary>
    private sealed class Agents : IAsyncDisposable
    {
        private readonly ControlPlaneClient[] _clients;
        private readonly CancellationTokenSource _stop;
        private readonly List<Task> _tasks = [];
        private readonly List<SimNode> _nodes = [];
        private long _reports, _reportErrors, _heartbeats, _heartbeatErrors, _watchRestarts;

        public Agents(string address, int count, TimeSpan repeat, CancellationToken stop)
        {
            _stop = CancellationTokenSource.CreateLinkedTokenSource(stop);
            // Plain channels (no failover invoker: there is one silo), one HTTP/2 connection each.
            _clients = [.. Enumerable.Range(0, Channels).Select(_ => new ControlPlaneClient(ControlPlaneChannel.Create(address)))];
            for (var i = 0; i < count; i++)
            {
                var node = new SimNode(NodeName(i), _clients[i % Channels]);
                _nodes.Add(node);
                _tasks.Add(Task.Run(() => WatchAsync(node)));
                _tasks.Add(Task.Run(() => ReportAsync(node, repeat)));
                _tasks.Add(Task.Run(() => HeartbeatAsync(node)));
            }
        }

        public long Reports => Interlocked.Read(ref _reports);

        /// <summary>While set, every node logs the positions it saw and reported, with their times.</summary>
        public bool Recording
        {
            set
            {
                foreach (var node in _nodes) node.Recording = value;
            }
        }

        public IReadOnlyList<SimNode> Nodes => _nodes;

        /// <summary>Position moves over all nodes.</summary>
        public long Moves => _nodes.Sum(n => Interlocked.Read(ref n.Moves));
        public long ReportErrors => Interlocked.Read(ref _reportErrors);
        public long Heartbeats => Interlocked.Read(ref _heartbeats);
        public long HeartbeatErrors => Interlocked.Read(ref _heartbeatErrors);
        public long WatchRestarts => Interlocked.Read(ref _watchRestarts);
        public List<string> Errors { get; } = [];

        /// <summary>What the run is doing now (errors are counted per phase).</summary>
        public string Phase { get; set; } = "starting";

        /// <summary>Failed calls and ended watches per phase and kind, in the order first seen.</summary>
        public List<(string Phase, string What, int Count)> ErrorCounts { get; } = [];

        private readonly Stopwatch _clock = Stopwatch.StartNew();

        private void Error(string node, string what, Exception e)
        {
            var detail = e is RpcException rpc ? $"{rpc.StatusCode} {rpc.Status.Detail} {rpc.Status.DebugException?.GetType().Name}: {rpc.Status.DebugException?.Message}" : $"{e.GetType().Name}: {e.Message}";
            lock (Errors)
            {
                var phase = Phase;
                var index = ErrorCounts.FindIndex(c => c.Phase == phase && c.What == what);
                if (index < 0) ErrorCounts.Add((phase, what, 1));
                else ErrorCounts[index] = (phase, what, ErrorCounts[index].Count + 1);
                if (Errors.Count < 10) Errors.Add($"{_clock.Elapsed.TotalSeconds:F1} s, {phase}, {node} {what}: {detail}");
            }
        }

        private async Task WatchAsync(SimNode node)
        {
            var token = _stop.Token;
            while (!token.IsCancellationRequested)
            {
                try
                {
                    var request = new WatchRequest { BookmarkIntervalSeconds = 5, ResumeToken = node.Newest ?? "" };
                    using var call = node.Client.Invoker.AsyncServerStreamingCall(WatchTokens, null, Calls.Until(token), request);
                    while (await call.ResponseStream.MoveNext(token))
                    {
                        if (call.ResponseStream.Current.Length > 0) node.Moved(call.ResponseStream.Current);
                    }
                }
                catch (Exception e) when (!token.IsCancellationRequested && e is RpcException or IOException)
                {
                    Error(node.Name, "watch ended", e);
                }
                catch (OperationCanceledException) when (token.IsCancellationRequested)
                {
                    return;
                }
                catch (RpcException) when (token.IsCancellationRequested)
                {
                    return;
                }
                if (token.IsCancellationRequested) return;
                Interlocked.Increment(ref _watchRestarts);
                try { await Task.Delay(500, token); } catch (OperationCanceledException) { return; }
            }
        }

        private async Task ReportAsync(SimNode node, TimeSpan repeat)
        {
            var token = _stop.Token;
            string? sent = null;
            try
            {
                while (!token.IsCancellationRequested)
                {
                    var position = node.Newest;
                    if (position is not null)
                    {
                        try
                        {
                            await node.Client.ReportProgrammedAsync(node.Name, position, Calls.Within(TimeSpan.FromSeconds(5), token));
                            if (node.Recording && position != sent) node.Sent.Add((Stopwatch.GetTimestamp(), position));
                            sent = position;
                            Interlocked.Increment(ref _reports);
                        }
                        catch (RpcException e) when (!token.IsCancellationRequested)
                        {
                            Interlocked.Increment(ref _reportErrors);
                            Error(node.Name, "report failed", e);
                            await Task.Delay(1000, token);
                        }
                    }
                    // A move while the report was on its way is already signalled.
                    if (node.Newest == sent) await node.Signal.WaitAsync(repeat > TimeSpan.Zero ? repeat : Timeout.InfiniteTimeSpan, token);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
            }
            catch (RpcException) when (token.IsCancellationRequested)
            {
            }
        }

        private async Task HeartbeatAsync(SimNode node)
        {
            var token = _stop.Token;
            var interval = TimeSpan.FromSeconds(40.0 / 3);
            try
            {
                // Spread over the first interval (the node's lease was renewed when it was created).
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * interval.TotalMilliseconds), token);
                while (!token.IsCancellationRequested)
                {
                    try
                    {
                        var lease = await node.Client.HeartbeatAsync(node.Name, Calls.Within(TimeSpan.FromSeconds(5), token));
                        interval = TimeSpan.FromSeconds(Math.Max(1, lease.LeaseSeconds / 3.0));
                        Interlocked.Increment(ref _heartbeats);
                    }
                    catch (RpcException e) when (!token.IsCancellationRequested)
                    {
                        Interlocked.Increment(ref _heartbeatErrors);
                        Error(node.Name, "heartbeat failed", e);
                    }
                    await Task.Delay(interval, token);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
            }
            catch (RpcException) when (token.IsCancellationRequested)
            {
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            await Task.WhenAll(_tasks);
            foreach (var client in _clients) client.Dispose();
            _stop.Dispose();
        }
    }

    private sealed class SimNode(string name, ControlPlaneClient client)
    {
        private volatile string? _newest;

        public string Name => name;
        public ControlPlaneClient Client => client;
        public SemaphoreSlim Signal { get; } = new(0, 1);

        /// <summary>Whether <see cref="Seen"/> and <see cref="Sent"/> grow (each written by one loop only, read once recording stopped).</summary>
        public volatile bool Recording;

        /// <summary>New positions from the watch, with when they arrived.</summary>
        public List<(long Time, string Token)> Seen { get; } = [];

        /// <summary>Reported positions, with when the report returned.</summary>
        public List<(long Time, string Token)> Sent { get; } = [];
        public string? Newest => _newest;

        /// <summary>How often the position moved (a new token; idle bookmarks repeat the last one).</summary>
        public long Moves;

        public void Moved(string position)
        {
            // An idle bookmark repeats the position: nothing to report.
            if (position == _newest) return;
            if (Recording) Seen.Add((Stopwatch.GetTimestamp(), position));
            Interlocked.Increment(ref Moves);
            _newest = position;
            if (Signal.CurrentCount == 0)
            {
                try { Signal.Release(); } catch (SemaphoreFullException) { }
            }
        }
    }

    /// <summary>A Release silo as a process of its own on a private unix socket and data directory (names start with "cvb").</summary>
    private sealed class SiloProcess : IAsyncDisposable
    {
        private readonly Process _process;
        private readonly string _data;
        private readonly string _socket;

        private SiloProcess(Process process, string data, string socket)
        {
            (_process, _data, _socket) = (process, data, socket);
            Meter = new ProcessMeter(process.Id);
        }

        public ProcessMeter Meter { get; }
        public string Address => "unix:" + _socket;
        public List<string> Output { get; } = [];

        public static async Task<SiloProcess> StartAsync(string dll, CancellationToken stop)
        {
            var id = Guid.NewGuid().ToString("N")[..8];
            var data = Path.Combine(Path.GetTempPath(), $"cvb-{id}");
            var socket = Path.Combine(Path.GetTempPath(), $"cvb-{id}.sock");
            Directory.CreateDirectory(data);
            var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
            foreach (var arg in (string[])[dll, "--Silo:Port=0", "--Silo:ListenAddress=127.0.0.1", $"--Silo:UnixSocket={socket}", $"--Silo:DataDirectory={data}",
                         "--Logging:LogLevel:Default=Warning", "--Dns:Enabled=false"]) info.ArgumentList.Add(arg);
            var silo = new SiloProcess(Process.Start(info)!, data, socket);
            silo._process.OutputDataReceived += (_, e) => silo.Add(e.Data);
            silo._process.ErrorDataReceived += (_, e) => silo.Add(e.Data);
            silo._process.BeginOutputReadLine();
            silo._process.BeginErrorReadLine();
            try
            {
                using var client = new ControlPlaneClient(silo.Address);
                var clock = Stopwatch.StartNew();
                while (true)
                {
                    try
                    {
                        await client.ConvergenceStatusAsync(Calls.Within(TimeSpan.FromSeconds(2), stop));
                        return silo;
                    }
                    catch (RpcException) when (clock.Elapsed < TimeSpan.FromSeconds(60) && !silo._process.HasExited)
                    {
                        await Task.Delay(200, stop);
                    }
                }
            }
            catch
            {
                await silo.DisposeAsync();
                throw;
            }
        }

        private void Add(string? line)
        {
            if (line is null) return;
            lock (Output) Output.Add(line);
        }

        public async ValueTask DisposeAsync()
        {
            if (!_process.HasExited)
            {
                kill(_process.Id, 15);
                try
                {
                    await _process.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(20));
                }
                catch (TimeoutException)
                {
                    _process.Kill();
                    await _process.WaitForExitAsync();
                }
            }
            _process.Dispose();
            if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
            File.Delete(_socket);
        }

        [DllImport("libc")]
        private static extern int kill(int pid, int signal);
    }
}
