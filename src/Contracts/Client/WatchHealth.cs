using System.Diagnostics.Metrics;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// How a program's watch of the control plane stands (the node agent's, the DNS server's): current
/// once it has had its full view and while its stream is connected; otherwise why not (no complete
/// list yet, or the control plane unreachable: the program then works from its last view). Its
/// <see cref="ResumableWatch"/> keeps it up to date; the health endpoint answers from it, and it is
/// exported as the gauge <c>controlplane.watch.current</c> (1 or 0) with the watcher's name.
/// A program that needs more than a current watch before it serves (the node agent: its data path
/// programmed from the view) says so through <see cref="Readiness"/>, which <see cref="Ready"/> adds.
/// </summary>
public sealed class WatchHealth : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Meter _meter = new("ControlPlane.Watch");
    private bool _synced;
    private bool _connected;
    private string _reason = "not connected to the control plane yet";

    /// <param name="watcher">Who watches ("agent", "dns"): the gauge's label.</param>
    public WatchHealth(string watcher)
    {
        _meter.CreateObservableGauge("controlplane.watch.current", () => new Measurement<int>(Current.Current ? 1 : 0, new KeyValuePair<string, object?>("watcher", watcher)),
            "{current}", "1 while this program's watch of the control plane has its full view and is connected; 0 while it has none yet or the control plane is unreachable (it works from its last view)");
    }

    /// <summary>Current, or why not.</summary>
    public (bool Current, string Reason) Current
    {
        get
        {
            lock (_lock) return _synced && _connected ? (true, string.Empty) : (false, _reason);
        }
    }

    /// <summary>What else the program needs before it is ready: null when nothing, else why it is not.</summary>
    public Func<string?>? Readiness { get; set; }

    /// <summary>Ready (what the health endpoint answers): the watch is current and <see cref="Readiness"/> has nothing to add; otherwise why not.</summary>
    public (bool Ready, string Reason) Ready
    {
        get
        {
            var current = Current;
            if (!current.Current) return current;
            return Readiness?.Invoke() is { } reason ? (false, reason) : (true, string.Empty);
        }
    }

    /// <summary>Heard from the control plane (an event or a bookmark).</summary>
    internal void Heard()
    {
        lock (_lock)
        {
            _connected = true;
            if (!_synced) _reason = "the first complete list from the control plane has not arrived yet";
        }
    }

    /// <summary>The full view has arrived.</summary>
    internal void Synced()
    {
        lock (_lock) _synced = true;
    }

    /// <summary>The stream failed or could not be opened.</summary>
    internal void Lost(string reason)
    {
        lock (_lock)
        {
            _connected = false;
            _reason = _synced ? $"{reason}; working from the last view" : reason;
        }
    }

    public void Dispose() => _meter.Dispose();
}
