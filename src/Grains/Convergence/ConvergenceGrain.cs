using System.Diagnostics;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Storage.Errors;
using ControlPlane.Storage.GrainStorage;

namespace ControlPlane.Grains.Convergence;

/// <summary>
/// See <see cref="IConvergenceGrain"/>. A node counts (is in M) while it is ready and its agent
/// has caught up: programmed everything up to the change log's heads as they were when it
/// became ready (or when this activation first heard of it). A node that goes not ready leaves M
/// at once; one that comes back must catch up again. A new activation (after a restart or a
/// move) knows no positions: the ready nodes that have an agent count from the start, as missing
/// until their agents report again; a node no agent ever spoke for (made by hand) catches up.
/// </summary>
internal sealed class ConvergenceGrain(DurableStore store, CommitClock clock) : Grain, IConvergenceGrain
{
    /// <summary>How long a new activation waits for every ready node's first report (agents repeat theirs every 5 s); it ends early once all have reported.</summary>
    private static readonly TimeSpan WarmUp = TimeSpan.FromSeconds(7);
    private static readonly TimeSpan Refresh = TimeSpan.FromSeconds(2);
    private const int MaxNames = 100;
    private const int Samples = 1024;

    private sealed class NodeState
    {
        public bool Ready;
        public long[]? Position;
        // Counted once the position reaches this (componentwise); null: counted.
        public long[]? CatchUpTo;
        public long LastReport;
        public readonly double[] Latencies = new double[Samples];
        public long LatencyCount;

        public bool Counted => Ready && CatchUpTo is null;
    }

    private readonly Dictionary<string, NodeState> _nodes = new(StringComparer.Ordinal);
    // The counted nodes' positions, per partition: the minimum is the programmed-everywhere position.
    private Minimums _minimums = null!;
    private long _started;
    private bool _warm;
    private long _version;
    private long[] _everywhere = [];
    // The store's heads as last read: a reported position beyond them is checked against the store.
    private long[] _heads = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private int Partitions => store.Partitions.Count;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _started = Stopwatch.GetTimestamp();
        _everywhere = new long[Partitions];
        _heads = new long[Partitions];
        _minimums = new Minimums(Partitions);
        await RefreshAsync(first: true);
        this.RegisterGrainTimer(_ => RefreshAsync(first: false), new GrainTimerCreationOptions(Refresh, Refresh) { Interleave = false, KeepAlive = true });
        await base.OnActivateAsync(cancellationToken);
    }

    /// <summary>Reads every node's readiness from the store (<paramref name="first"/>: the list this activation starts from); ends the warm-up when it is over.</summary>
    private async Task RefreshAsync(bool first)
    {
        var page = await store.Store.ListAsync([Kinds.Node], null, null, int.MaxValue);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stored in page.Objects)
        {
            seen.Add(stored.Key);
            SetReady(stored.Key, Node.Parser.ParseFrom(stored.Data).Status, page.Heads, first);
        }
        foreach (var gone in _nodes.Keys.Where(k => !seen.Contains(k)).ToList()) Forget(gone);
        if (!_warm && Stopwatch.GetElapsedTime(_started) >= WarmUp)
        {
            _warm = true;
            // Ready nodes still silent after the warm-up have no agent to speak of: they stop
            // counting as missing and wait to catch up like a node that just became ready.
            foreach (var state in _nodes.Values.Where(s => s.Ready && s.Position is null).ToList()) Change(state, s => s.CatchUpTo = page.Heads);
        }
        Recompute();
    }

    private void SetReady(string node, NodeStatus status, long[] heads, bool first)
    {
        var ready = status.Ready;
        if (!_nodes.TryGetValue(node, out var state))
        {
            // Heard of for the first time. In the list this activation starts from, a node that
            // has an agent was ready before: it counts, as missing until its agent reports. A node
            // no agent ever spoke for, or one heard of later (new since), catches up first.
            var before = first && status.Agent is not null;
            _nodes[node] = state = new NodeState { Ready = ready, CatchUpTo = ready && !before ? heads : null };
            if (state.Counted) _minimums.Add(state.Position);
            return;
        }
        if (ready == state.Ready) return;
        Change(state, s =>
        {
            s.Ready = ready;
            s.CatchUpTo = ready && !(s.Position is { } position && Covers(position, heads)) ? heads : null;
        });
    }

    /// <summary>Changes a node, keeping the counted positions in step.</summary>
    private void Change(NodeState state, Action<NodeState> change)
    {
        if (state.Counted) _minimums.Remove(state.Position);
        change(state);
        if (state.Counted) _minimums.Add(state.Position);
    }

    private void Forget(string node)
    {
        if (_nodes.Remove(node, out var state) && state.Counted) _minimums.Remove(state.Position);
    }

    public async Task NodeChangedAsync(string node)
    {
        var stored = await store.Store.ReadAsync(Kinds.Node, node);
        var heads = (await store.Store.ListAsync([], null, null, 0)).Heads;
        if (stored is null) Forget(node);
        else SetReady(node, Node.Parser.ParseFrom(stored.Data).Status, heads, first: false);
        Recompute();
    }

    public async Task ReportAsync(string node, long[] position)
    {
        if (position.Length != Partitions) return;
        if (!_nodes.ContainsKey(node))
        {
            await NodeChangedAsync(node);
            if (!_nodes.ContainsKey(node)) throw new ControlPlaneException(ErrorCode.NotFound, $"node '{node}' not found: register it before reporting", "name");
        }
        var state = _nodes[node];
        var now = Stopwatch.GetTimestamp();
        if (state.CatchUpTo is null && state.Position is { } same && same.AsSpan().SequenceEqual(position))
        {
            // The periodic repeat: nothing moved.
            state.LastReport = now;
            return;
        }
        await RequireInStoreAsync(position);
        if (state.Position is { } before)
        {
            // One sample per partition that moved: its newest change's arrival → now.
            for (var p = 0; p < position.Length; p++)
            {
                if (position[p] > before[p] && clock.ArrivedAt(p, position[p]) is { } arrived)
                {
                    var ms = Stopwatch.GetElapsedTime(arrived, now).TotalMilliseconds;
                    state.Latencies[state.LatencyCount++ % Samples] = ms;
                    clock.Programmed(node, ms);
                }
            }
        }
        state.LastReport = now;
        Change(state, s =>
        {
            s.Position = position;
            if (s.CatchUpTo is { } target && Covers(position, target)) s.CatchUpTo = null;
        });
        // Every ready node has spoken: nothing left to wait for.
        if (!_warm && _nodes.Values.All(n => !n.Ready || n.Position is not null)) _warm = true;
        Recompute();
    }

    /// <summary>
    /// Refuses a position ahead of the store's head in some partition (OUT_OF_RANGE, as a watch
    /// from it is): no agent can have programmed changes this store never made, and counting one
    /// would report changes programmed that no node has (after a restore from a backup, say).
    /// Checked against the heads last read and what this silo's change stream has carried since
    /// (all of it on a store only this silo writes); the store is read only when a position passes both.
    /// </summary>
    private async Task RequireInStoreAsync(long[] position)
    {
        for (var p = 0; p < _heads.Length; p++) _heads[p] = Math.Max(_heads[p], clock.Latest(p));
        if (Covers(_heads, position)) return;
        _heads = (await store.Store.ListAsync([], null, null, 0)).Heads;
        Storage.ChangeRange.RequireNotAhead(position, _heads, "position");
    }

    private static bool Covers(long[] position, long[] target)
    {
        for (var p = 0; p < target.Length; p++)
        {
            if (position[p] < target[p]) return false;
        }
        return true;
    }

    /// <summary>The programmed-everywhere position; wakes the watchers when it moved.</summary>
    private void Recompute()
    {
        var moved = false;
        for (var p = 0; p < _everywhere.Length && !moved; p++) moved = _minimums.Min(p) != _everywhere[p];
        if (!moved) return;
        var everywhere = new long[Partitions];
        for (var p = 0; p < everywhere.Length; p++) everywhere[p] = _minimums.Min(p);
        _everywhere = everywhere;
        _version++;
        clock.Everywhere(everywhere);
        var changed = _changed;
        _changed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        changed.TrySetResult();
    }

    public async Task<ProgrammedView> WatchAsync(long version, TimeSpan wait)
    {
        if (version == _version)
        {
            await Task.WhenAny(_changed.Task, Task.Delay(wait));
        }
        return new ProgrammedView(_version, _everywhere);
    }

    public Task<ProgrammedStatus> CoverageAsync(int partition, long revision)
    {
        var status = new ProgrammedStatus { Etag = revision.ToString(System.Globalization.CultureInfo.InvariantCulture) };
        var missing = new List<string>();
        var catchingUp = new List<string>();
        foreach (var (name, state) in _nodes)
        {
            if (!state.Ready) continue;
            if (!state.Counted)
            {
                catchingUp.Add(name);
                continue;
            }
            status.ReadyNodes++;
            if (state.Position is { } position && position[partition] >= revision) status.ProgrammedNodes++;
            else missing.Add(name);
        }
        status.Missing.AddRange(missing.Order(StringComparer.Ordinal).Take(MaxNames));
        status.CatchingUp.AddRange(catchingUp.Order(StringComparer.Ordinal).Take(MaxNames));
        return Task.FromResult(status);
    }

    public Task<ConvergenceStatusResponse> StatusAsync()
    {
        var response = new ConvergenceStatusResponse { ChangesWaiting = (ulong)clock.Waiting() };
        foreach (var (name, state) in _nodes.OrderBy(n => n.Key, StringComparer.Ordinal))
        {
            var count = (int)Math.Min(state.LatencyCount, Samples);
            var sorted = state.Latencies.AsSpan(0, count).ToArray();
            Array.Sort(sorted);
            response.Nodes.Add(new NodeConvergence
            {
                Name = name,
                Ready = state.Ready,
                Counted = state.Counted,
                LatencyP50Ms = Percentile(sorted, 0.50),
                LatencyP99Ms = Percentile(sorted, 0.99),
                LatencyMaxMs = count > 0 ? sorted[^1] : 0,
                LatencySamples = (ulong)state.LatencyCount,
                SecondsSinceReport = state.LastReport == 0 ? -1 : Stopwatch.GetElapsedTime(state.LastReport).TotalSeconds,
            });
        }
        return Task.FromResult(response);
    }

    private static double Percentile(double[] sorted, double q) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(q * sorted.Length))];

    /// <summary>A multiset of positions per partition (a node not yet reported is at 0), with its minimum.</summary>
    private sealed class Minimums(int partitions)
    {
        private readonly SortedDictionary<long, int>[] _sets = [.. Enumerable.Range(0, partitions).Select(_ => new SortedDictionary<long, int>())];

        public void Add(long[]? position)
        {
            for (var p = 0; p < _sets.Length; p++)
            {
                var revision = position?[p] ?? 0;
                _sets[p][revision] = _sets[p].GetValueOrDefault(revision) + 1;
            }
        }

        public void Remove(long[]? position)
        {
            for (var p = 0; p < _sets.Length; p++)
            {
                var revision = position?[p] ?? 0;
                var n = _sets[p][revision];
                if (n == 1) _sets[p].Remove(revision);
                else _sets[p][revision] = n - 1;
            }
        }

        /// <summary>The lowest position in the partition; unbounded when no node counts.</summary>
        public long Min(int partition)
        {
            foreach (var (revision, _) in _sets[partition]) return revision;
            return long.MaxValue;
        }
    }
}
