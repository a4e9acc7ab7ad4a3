using System.Diagnostics;
using System.Diagnostics.Metrics;

namespace ControlPlane.Storage.Telemetry;

/// <summary>
/// The store's instruments (meter and activity source <see cref="Name"/>): the size and duration of
/// each group commit, a span per write (child of the grain call that wrote) and a span per commit
/// batch linked to the writes it carried.
/// </summary>
public static class StoreTelemetry
{
    public const string Name = "ControlPlane.Storage";

    public static readonly ActivitySource Source = new(Name);

    private static readonly Meter Meter = new(Name);

    public static readonly Histogram<long> BatchSize = Meter.CreateHistogram<long>("controlplane.store.commit.batch_size", "{write}", "Writes per group commit",
        advice: new InstrumentAdvice<long> { HistogramBucketBoundaries = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512] });

    public static readonly Histogram<double> CommitDuration = Meter.CreateHistogram<double>("controlplane.store.commit.duration", "s", "Duration of one group commit (one transaction)",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1] });

    private static long s_commitFailures;

    /// <summary>
    /// Observed rather than added to, so that it is exported from the start at 0: an alert on it
    /// then tells "no failure" from "not scraped".
    /// </summary>
    private static readonly ObservableCounter<long> CommitFailures = Meter.CreateObservableCounter("controlplane.store.commit.failures",
        () => Volatile.Read(ref s_commitFailures), "{commit}",
        "Group commits that failed (their writes answered UNAVAILABLE): the store lost, unwritable or full");

    /// <summary>Counts a failed group commit.</summary>
    public static void CommitFailed() => Interlocked.Increment(ref s_commitFailures);

    public static readonly Counter<long> FeedCatchUps = Meter.CreateCounter<long>("controlplane.store.feed.catch_ups", "{catch-up}",
        "Times a watch fell more than its buffer behind the live changes and caught up from the change log");

    /// <summary>A span for one write, when it is part of a trace and a tracer listens; else null.</summary>
    public static Activity? StartWrite(string kind, string key)
    {
        if (Activity.Current is null || !Source.HasListeners()) return null;
        var activity = Source.StartActivity("store.write");
        activity?.SetTag("controlplane.kind", kind);
        activity?.SetTag("controlplane.key", key);
        return activity;
    }

    /// <summary>A span for one commit batch, linked to the traced writes it carries; null when none is traced.</summary>
    public static Activity? StartCommit(List<WriteRequest> requests)
    {
        if (!Source.HasListeners()) return null;
        List<ActivityLink>? links = null;
        foreach (var request in requests)
        {
            // Only sampled writes: one whose caller does not sample its trace is made but never exported.
            if ((request.TraceContext.TraceFlags & ActivityTraceFlags.Recorded) != 0) (links ??= []).Add(new ActivityLink(request.TraceContext));
        }
        if (links is null) return null;
        // A root of its own (one batch serves many traces); each write's trace finds it by the link.
        var activity = Source.StartActivity("store.commit", ActivityKind.Internal, parentContext: default, links: links);
        activity?.SetTag("controlplane.batch_size", requests.Count);
        return activity;
    }
}
