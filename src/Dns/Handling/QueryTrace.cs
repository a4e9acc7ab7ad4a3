using System.Diagnostics;

namespace ControlPlane.Dns.Handling;

/// <summary>
/// The span of one query when "Dns:TraceQueries" is on (activity source <see cref="Name"/>): it
/// ends with the response's rcode. When the option is off the handler makes none, and this costs
/// a default struct: answering stays allocation-free.
/// </summary>
public ref struct QueryTrace
{
    public const string Name = "ControlPlane.Dns";

    private static readonly ActivitySource Source = new(Name);

    private readonly Activity? _activity;
    private readonly Span<byte> _response;

    private QueryTrace(Activity activity, Span<byte> response)
    {
        _activity = activity;
        _response = response;
    }

    public static QueryTrace Start(bool enabled, bool tcp, Span<byte> response)
    {
        if (!enabled || !Source.HasListeners() || Source.StartActivity("dns.query", ActivityKind.Server) is not { } activity) return default;
        activity.SetTag("network.transport", tcp ? "tcp" : "udp");
        return new QueryTrace(activity, response);
    }

    /// <summary>Ends the span with the response's rcode (none when nothing was answered).</summary>
    public readonly void Dispose()
    {
        if (_activity is null) return;
        // QR set: a response was written (a dropped query leaves the buffer as it was).
        if (_response.Length > 3 && (_response[2] & 0x80) != 0) _activity.SetTag("dns.rcode", _response[3] & 0xF);
        _activity.Dispose();
    }
}
