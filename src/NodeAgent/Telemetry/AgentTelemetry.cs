using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ControlPlane.NodeAgent.Telemetry;

/// <summary>
/// The agent's instruments (meter and activity source <see cref="Name"/>): how long each kernel
/// pass takes (netlink: the overlay reconciler; nf_tables: the table worker), how many policy
/// entries the node's table holds, and a span per pass that continues the trace of the writes it
/// applies (the traceparent their watch events carried).
/// </summary>
public sealed class AgentTelemetry : IDisposable
{
    public const string Name = "ControlPlane.NodeAgent";

    public static readonly ActivitySource Source = new(Name);

    private static readonly double[] Buckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5];

    private readonly Meter _meter = new(Name);
    private readonly KeyValuePair<string, object?> _node;
    private long _policyEntries;

    public AgentTelemetry(AgentOptions options)
    {
        _node = new("node", options.NodeName);
        Netlink = _meter.CreateHistogram<double>("controlplane.agent.netlink.apply.duration", "s", "One overlay pass through netlink (routes, neighbours, FDB, links, rules)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        Nftables = _meter.CreateHistogram<double>("controlplane.agent.nftables.apply.duration", "s", "One nf_tables pass of the agent's table (one transaction, or a read-back and converge)",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = Buckets });
        _meter.CreateObservableGauge("controlplane.agent.policy.entries", () => new Measurement<long>(Volatile.Read(ref _policyEntries), _node),
            "{entry}", "Network policy entries (set and map elements) in this node's table");
    }

    private Histogram<double> Netlink { get; }

    private Histogram<double> Nftables { get; }

    public void NetlinkApplied(TimeSpan elapsed) => Netlink.Record(elapsed.TotalSeconds, _node);

    public void NftablesApplied(TimeSpan elapsed) => Nftables.Record(elapsed.TotalSeconds, _node);

    public void PolicyEntries(long entries) => Volatile.Write(ref _policyEntries, entries);

    /// <summary>
    /// The spans of one kernel pass: one per trace among the traced writes it applies, a child of
    /// that trace's first write (so every write's trace reaches the kernel), linked to the others;
    /// none when no write in it was traced or nothing listens. Dispose ends them.
    /// </summary>
    public static ApplySpans StartApply(string name, List<ActivityContext>? writes)
    {
        if (writes is not { Count: > 0 } || !Source.HasListeners()) return default;
        var previous = Activity.Current;
        var spans = new List<Activity>();
        foreach (var trace in writes.GroupBy(w => w.TraceId))
        {
            var first = trace.First();
            var links = writes.Count > 1 ? writes.Where(w => w != first).Select(w => new ActivityLink(w)).ToList() : null;
            if (Source.StartActivity(name, ActivityKind.Consumer, first, links: links) is not { } activity) continue;
            activity.SetTag("controlplane.writes", writes.Count);
            spans.Add(activity);
        }
        Activity.Current = previous;
        return new ApplySpans(spans);
    }

    /// <summary>The spans of one pass (see <see cref="StartApply"/>).</summary>
    public readonly struct ApplySpans(List<Activity>? spans) : IDisposable
    {
        public void Failed(string reason)
        {
            foreach (var span in spans ?? []) span.SetStatus(ActivityStatusCode.Error, reason);
        }

        public void Dispose()
        {
            foreach (var span in spans ?? []) span.Stop();
        }
    }

    public void Dispose() => _meter.Dispose();
}
