using System.Diagnostics;
using System.Diagnostics.Metrics;
using ControlPlane.Storage.Changes;
using ControlPlane.Storage.GrainStorage;

namespace ControlPlane.Grains.Convergence;

/// <summary>
/// When each recent change reached this silo's change stream (its commit, or on a shared store
/// the moment the log reader published it), kept per partition for the last
/// <see cref="Depth"/> changes: commit → programmed latency is measured against it. Also the
/// silo's convergence metrics (meter <see cref="MeterName"/>).
/// </summary>
public sealed class CommitClock : IDisposable
{
    public const string MeterName = "ControlPlane.Convergence";
    private const int Depth = 4096;
    private readonly Ring[] _rings;
    private readonly ChangeHub _hub;
    private readonly CancellationTokenSource _stop = new();
    private readonly Meter _meter = new(MeterName);
    private readonly Histogram<double> _latency;
    private long[]? _everywhere;

    public CommitClock(DurableStore store)
    {
        _hub = store.Hub;
        _rings = [.. Enumerable.Range(0, store.Partitions.Count).Select(_ => new Ring())];
        // Seconds, as every duration the project exports (Prometheus' base unit).
        _latency = _meter.CreateHistogram<double>("controlplane.convergence.programmed_latency", "s",
            "Commit to programmed on one node, per node",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60] });
        _meter.CreateObservableGauge("controlplane.convergence.changes_waiting", () => (long)Waiting(),
            description: "Recent changes some counted node has not programmed yet");
        _ = Task.Run(RunAsync);
    }

    /// <summary>When the change at <paramref name="revision"/> (or the first after it) arrived, or null if too old to know.</summary>
    public long? ArrivedAt(int partition, long revision) => _rings[partition].Find(revision);

    /// <summary>The newest revision of <paramref name="partition"/> this silo's change stream has carried since it started (0: none yet).</summary>
    public long Latest(int partition) => _rings[partition].Latest();

    /// <summary>Records one node's commit → programmed latency in the metrics.</summary>
    public void Programmed(string node, double milliseconds) => _latency.Record(milliseconds / 1000, new KeyValuePair<string, object?>("node", node));

    /// <summary>The cluster's programmed-everywhere position, for the waiting gauge.</summary>
    public void Everywhere(long[] everywhere) => Volatile.Write(ref _everywhere, everywhere);

    /// <summary>Recent changes beyond the programmed-everywhere position.</summary>
    public int Waiting()
    {
        if (Volatile.Read(ref _everywhere) is not { } everywhere) return 0;
        var waiting = 0;
        for (var p = 0; p < _rings.Length && p < everywhere.Length; p++) waiting += _rings[p].CountAfter(everywhere[p]);
        return waiting;
    }

    private async Task RunAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            using var subscription = _hub.Subscribe();
            try
            {
                while (await subscription.WaitToReadAsync(_stop.Token).ConfigureAwait(false))
                {
                    while (subscription.TryRead(out var batch))
                    {
                        var now = Stopwatch.GetTimestamp();
                        foreach (var change in batch) _rings[change.Partition].Add(change.Revision, now);
                    }
                }
            }
            catch (OperationCanceledException)
            {
                return;
            }
            // The stream closed (this clock fell behind, or the store is closing): start again.
            if (!subscription.Overflowed) return;
        }
    }

    public void Dispose()
    {
        _stop.Cancel();
        _meter.Dispose();
    }

    /// <summary>The last <see cref="Depth"/> (revision, arrival) pairs of one partition, in revision order.</summary>
    private sealed class Ring
    {
        private readonly long[] _revisions = new long[Depth];
        private readonly long[] _times = new long[Depth];
        private int _next, _count;

        public void Add(long revision, long time)
        {
            lock (this)
            {
                _revisions[_next] = revision;
                _times[_next] = time;
                _next = (_next + 1) % Depth;
                if (_count < Depth) _count++;
            }
        }

        public long? Find(long revision)
        {
            lock (this)
            {
                // Oldest first: the first entry at or after the revision.
                var (lo, hi) = (0, _count);
                while (lo < hi)
                {
                    var mid = (lo + hi) / 2;
                    if (At(mid).Revision < revision) lo = mid + 1;
                    else hi = mid;
                }
                return lo < _count && (lo > 0 || At(0).Revision == revision) ? At(lo).Time : null;
            }
        }

        public long Latest()
        {
            lock (this) return _count == 0 ? 0 : At(_count - 1).Revision;
        }

        public int CountAfter(long revision)
        {
            lock (this)
            {
                var n = 0;
                for (var i = _count - 1; i >= 0 && At(i).Revision > revision; i--) n++;
                return n;
            }
        }

        private (long Revision, long Time) At(int index)
        {
            var slot = (_next - _count + index + Depth) % Depth;
            return (_revisions[slot], _times[slot]);
        }
    }
}
