using System.Diagnostics.Tracing;
using System.Globalization;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// Says in the program's log when its telemetry cannot be exported. The OTLP exporter reports a
/// collector it cannot reach, or one that refuses what it is sent, only on its own EventSource,
/// which nothing reads by default, so spans and metrics were dropped without a line anywhere.
/// This listens to that source (warnings and errors) and logs the first failure as a warning,
/// then at most one line per <see cref="Interval"/> with how many more there were.
/// </summary>
public sealed partial class TelemetryExportLog : EventListener, IHostedService
{
    /// <summary>The exporter's EventSource (OpenTelemetry.Exporter.OpenTelemetryProtocol).</summary>
    public const string ExporterSource = "OpenTelemetry-Exporter-OpenTelemetryProtocol";

    /// <summary>Longest a further failure waits to be logged after the last line.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMinutes(1);

    private readonly ILogger<TelemetryExportLog> _log;
    private readonly Lock _gate = new();
    private long _lastLogged = long.MinValue;
    private int _unlogged;

    public TelemetryExportLog(ILogger<TelemetryExportLog> log)
    {
        _log = log;
    }

    protected override void OnEventSourceCreated(EventSource source)
    {
        // Called from the base constructor for sources that exist already, before _log is set:
        // only enabling happens here.
        if (source.Name == ExporterSource) EnableEvents(source, EventLevel.Warning);
    }

    protected override void OnEventWritten(EventWrittenEventArgs e)
    {
        if (e.EventSource.Name != ExporterSource || e.Level > EventLevel.Warning || _log is null) return;
        int more;
        lock (_gate)
        {
            var now = Environment.TickCount64;
            if (_lastLogged != long.MinValue && now - _lastLogged < (long)Interval.TotalMilliseconds)
            {
                _unlogged++;
                return;
            }
            (_lastLogged, more, _unlogged) = (now, _unlogged, 0);
        }
        if (more == 0) ExportFailed(_log, Describe(e), (int)Interval.TotalSeconds);
        else ExportStillFailing(_log, Describe(e), more);
    }

    /// <summary>The event's message with its values, each value's first line only (an exception's text brings its stack).</summary>
    public static string Describe(EventWrittenEventArgs e)
    {
        var values = e.Payload?.Select(v => FirstLine(Convert.ToString(v, CultureInfo.InvariantCulture))).ToArray() ?? [];
        if (string.IsNullOrEmpty(e.Message)) return $"{e.EventName}: {string.Join("; ", values)}";
        try
        {
            return string.Format(CultureInfo.InvariantCulture, e.Message, values);
        }
        catch (FormatException)
        {
            return $"{e.Message} ({string.Join("; ", values)})";
        }
    }

    private static string FirstLine(string? text) =>
        text is null ? string.Empty : text.IndexOfAny(['\r', '\n']) is var end and >= 0 ? text[..end] : text;

    public Task StartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    [LoggerMessage(1, LogLevel.Warning, "Telemetry is not being exported: {Reason} (further failures: at most one line per {Seconds} s)")]
    private static partial void ExportFailed(ILogger logger, string reason, int seconds);

    [LoggerMessage(2, LogLevel.Warning, "Telemetry is still not being exported: {Reason} ({More} more failures since the last line)")]
    private static partial void ExportStillFailing(ILogger logger, string reason, int more);
}
