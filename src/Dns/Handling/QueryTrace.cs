using System.Diagnostics;
using ControlPlane.Dns.Wire;

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
        if (_response.Length > 3 && (_response[2] & 0x80) != 0)
        {
            _activity.SetTag("dns.rcode", _response[3] & 0xF);
            if (Question(_response) is var (name, type))
            {
                _activity.SetTag("dns.question.name", name);
                _activity.SetTag("dns.question.type", type);
            }
        }
        _activity.Dispose();
    }

    /// <summary>
    /// The question a response echoes (QDCOUNT 1, right after the header), its name as DNS gives
    /// it with a final dot, or null when there is none or it does not parse. Only a traced query
    /// pays for it.
    /// </summary>
    private static (string Name, int Type)? Question(ReadOnlySpan<byte> response)
    {
        if (response.Length < 12 || response[4] != 0 || response[5] != 1) return null;
        Span<char> text = stackalloc char[DnsName.MaxTextLength];
        var end = DnsName.Read(response, 12, text, out var length);
        if (end < 0 || end + 2 > response.Length) return null;
        return (string.Concat(text[..length], "."), response[end] << 8 | response[end + 1]);
    }
}
