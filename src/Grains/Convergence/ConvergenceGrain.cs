using System.Diagnostics;
using ControlPlane.Contracts.V1;
using ControlPlane.Grains.Resources;
using ControlPlane.Storage.GrainStorage;

namespace ControlPlane.Grains.Convergence;

/// <summary>
/// See <see cref="IConvergenceGrain"/>. A node counts (is in M) while it is ready and its agent
/// has caught up: programmed everything up to the change log's heads as they were when it
/// became ready (or when this activation first heard of it). A node that goes not ready leaves M
/// at once; one that comes back must catch up again.
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
    private long _started;
    private bool _warm;
    private long _version;
    private long[] _everywhere = [];
    private TaskCompletionSource _changed = new(TaskCreationOptions.RunContinuationsAsynchronously);

    private int Partitions => store.Partitions.Count;

    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _started = Stopwatch.GetTimestamp();
        _everywhere = new long[Partitions];
        await RefreshAsync(warming: true);
        this.RegisterGrainTimer(_ => RefreshAsync(warming: false), new GrainTimerCreationOptions(Refresh, Refresh) { Interleave = false, KeepAlive = true });
        await base.OnActivateAsync(cancellationToken);
    }

    /// <summary>Reads every node's readiness from the store; ends the warm-up when it is over.</summary>
    private async Task RefreshAsync(bool warming)
    {
        var page = await store.Store.ListAsync([Kinds.Node], null, null, int.MaxValue);
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var stored in page.Objects)
        {
            seen.Add(stored.Key);
            SetReady(stored.Key, Node.Parser.ParseFrom(stored.Data).Status.Ready, page.Heads, warming);
        }
        foreach (var gone in _nodes.Keys.Where(k => !seen.Contains(k)).ToList()) _nodes.Remove(gone);
        if (!_warm && Stopwatch.GetElapsedTime(_started) >= WarmUp)
        {
            _warm = true;
            // Ready nodes still silent after the warm-up have no agent to speak of: they stop
            // counting as missing and wait to catch up like a node that just became ready.
            foreach (var state in _nodes.Values.Where(s => s.Ready && s.Position is null)) state.CatchUpTo = page.Heads;
        }
        Recompute();
    }

    private void SetReady(string node, bool ready, long[] heads, bool warming)
    {
        if (!_nodes.TryGetValue(node, out var state))
        {
            // Heard of for the first time: during the warm-up it was ready before this
            // activation (it counts, as missing until it reports); later it is new and catches up.
            _nodes[node] = state = new NodeState { Ready = ready, CatchUpTo = ready && !warming && _warm ? heads : null };
            return;
        }
        if (ready == state.Ready) return;
        state.Ready = ready;
        state.CatchUpTo = ready && !(state.Position is { } position && Covers(position, heads)) ? heads : null;
    }

    public async Task NodeChangedAsync(string node)
    {
        var stored = await store.Store.ReadAsync(Kinds.Node, node);
        var heads = (await store.Store.ListAsync([], null, null, 0)).Heads;
        if (stored is null) _nodes.Remove(node);
        else SetReady(node, Node.Parser.ParseFrom(stored.Data).Status.Ready, heads, warming: false);
        Recompute();
    }

    public async Task ReportAsync(string node, long[] position)
    {
        if (position.Length != Partitions) return;
        if (!_nodes.ContainsKey(node))
        {
            await NodeChangedAsync(node);
            if (!_nodes.ContainsKey(node)) return;
        }
        var state = _nodes[node];
        var now = Stopwatch.GetTimestamp();
        if (state.CatchUpTo is null && state.Position is { } same && same.AsSpan().SequenceEqual(position))
        {
            // The periodic repeat: nothing moved.
            state.LastReport = now;
            return;
        }
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
        state.Position = position;
        state.LastReport = now;
        if (state.CatchUpTo is { } target && Covers(position, target)) state.CatchUpTo = null;
        // Every ready node has spoken: nothing left to wait for.
        if (!_warm && _nodes.Values.All(n => !n.Ready || n.Position is not null)) _warm = true;
        Recompute();
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
        var everywhere = new long[Partitions];
        Array.Fill(everywhere, long.MaxValue);
        foreach (var state in _nodes.Values.Where(s => s.Counted))
        {
            for (var p = 0; p < everywhere.Length; p++) everywhere[p] = Math.Min(everywhere[p], state.Position?[p] ?? 0);
        }
        if (everywhere.AsSpan().SequenceEqual(_everywhere)) return;
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
}
