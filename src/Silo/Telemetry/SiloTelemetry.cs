using System.Diagnostics;
using System.Diagnostics.Metrics;
using OpenTelemetry.Metrics;

namespace ControlPlane.Silo.Telemetry;

/// <summary>
/// The silo's own instruments: API calls (meter and activity source <see cref="ApiName"/>) and
/// watch streams (<see cref="WatchName"/>). Static, like the runtime's own meters: one silo per
/// process in production, and a test that hosts two sums them.
/// </summary>
public static class SiloTelemetry
{
    public const string ApiName = "ControlPlane.Api";
    public const string WatchName = "ControlPlane.Watch";

    public static readonly ActivitySource Api = new(ApiName);
    public static readonly ActivitySource Watch = new(WatchName);

    private static readonly Meter ApiMeter = new(ApiName);
    private static readonly Meter WatchMeter = new(WatchName);

    public static readonly Counter<long> Calls = ApiMeter.CreateCounter<long>("controlplane.api.calls", "{call}", "API calls by method and status code");

    public static readonly Histogram<double> Duration = ApiMeter.CreateHistogram<double>("controlplane.api.duration", "s", "API call duration by method and status code",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30] });

    private static long _streams;

    /// <summary>Watch streams open now.</summary>
    public static long Streams => Volatile.Read(ref _streams);

    public static readonly Histogram<double> WatchLag = WatchMeter.CreateHistogram<double>("controlplane.watch.lag", "s", "From a change's commit to its send on a watch stream",
        advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5] });

    static SiloTelemetry()
    {
        WatchMeter.CreateObservableGauge("controlplane.watch.streams", () => Streams, "{stream}", "Watch streams open on this silo");
    }

    /// <summary>
    /// Orleans' instruments that are updated on every message or grain call (messaging counters,
    /// application request latency, directory lookups): a view that drops them, so that no
    /// listener is attached to them and a call does not pay for them. The catalog (activations),
    /// directory sizes, membership and runtime instruments stay. "Metrics:OrleansPerCall=true"
    /// keeps them all.
    /// </summary>
    public static MetricStreamConfiguration? WithoutOrleansPerCall(Instrument instrument) =>
        instrument.Meter.Name == "Microsoft.Orleans" && Array.Exists(OrleansPerCall, p => instrument.Name.StartsWith(p, StringComparison.Ordinal))
            ? MetricStreamConfiguration.Drop
            : null;

    private static readonly string[] OrleansPerCall = ["orleans-messaging-", "orleans-app-requests-", "orleans-directory-lookups-"];

    public static void StreamOpened() => Interlocked.Increment(ref _streams);

    public static void StreamClosed() => Interlocked.Decrement(ref _streams);
}
