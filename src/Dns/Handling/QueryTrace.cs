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
    /// The question a response echoes (QDCOUNT 1; its name right after the header, uncompressed),
    /// in lower case, or null when there is none or it does not parse. Only a traced query pays for it.
    /// </summary>
    private static (string Name, int Type)? Question(ReadOnlySpan<byte> response)
    {
        if (response.Length < 12 || response[4] != 0 || response[5] != 1) return null;
        var name = new System.Text.StringBuilder();
        var at = 12;
        while (at < response.Length && response[at] is var length and not 0)
        {
            if (length > 63 || at + 1 + length > response.Length) return null;
            foreach (var b in response.Slice(at + 1, length)) name.Append((char)(b is >= (byte)'A' and <= (byte)'Z' ? b + 32 : b));
            name.Append('.');
            at += 1 + length;
        }
        if (at + 2 >= response.Length) return null;
        return (name.Length == 0 ? "." : name.ToString(), response[at + 1] << 8 | response[at + 2]);
    }
}
