using System.Net;
using Google.Protobuf;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Observability.Tests;

/// <summary>One span as OTLP carried it: ids in hex, the service that sent it.</summary>
/// <param name="StatusCode">The span's status: 0 unset, 1 ok, 2 error.</param>
internal sealed record ReceivedSpan(string Service, string Scope, string TraceId, string SpanId, string ParentSpanId, string Name, int StatusCode, string Key = "", string Node = "");

/// <summary>
/// An OTLP/HTTP receiver (protobuf): Kestrel on the given addresses, POST /v1/traces decoded by a
/// small hand-written reader of ExportTraceServiceRequest (the OTLP proto types are not a package
/// we have); /v1/metrics and /v1/logs are accepted and ignored.
/// </summary>
internal sealed class OtlpReceiver : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly List<ReceivedSpan> _spans = [];

    public OtlpReceiver(IEnumerable<IPAddress> addresses)
    {
        Port = Ports.Free();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.WebHost.ConfigureKestrel(k =>
        {
            foreach (var address in addresses) k.Listen(address, Port);
        });
        _app = builder.Build();
        _app.MapPost("/v1/traces", async (HttpContext context) =>
        {
            using var body = new MemoryStream();
            await context.Request.Body.CopyToAsync(body);
            var spans = Decode(body.ToArray());
            lock (_spans) _spans.AddRange(spans);
            context.Response.ContentType = "application/x-protobuf";
        });
        _app.MapPost("/v1/metrics", () => Results.Ok());
        _app.MapPost("/v1/logs", () => Results.Ok());
    }

    public int Port { get; }

    public Task StartAsync() => _app.StartAsync();

    public List<ReceivedSpan> Spans
    {
        get { lock (_spans) return [.. _spans]; }
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
    }

    // ExportTraceServiceRequest { repeated ResourceSpans resource_spans = 1; }
    // ResourceSpans { Resource resource = 1; repeated ScopeSpans scope_spans = 2; }
    // Resource { repeated KeyValue attributes = 1; }   KeyValue { string key = 1; AnyValue value = 2; }   AnyValue { string string_value = 1; ... }
    // ScopeSpans { InstrumentationScope scope = 1; repeated Span spans = 2; }   InstrumentationScope { string name = 1; }
    // Span { bytes trace_id = 1; bytes span_id = 2; string trace_state = 3; bytes parent_span_id = 4; string name = 5; ... }
    private static List<ReceivedSpan> Decode(byte[] request)
    {
        var spans = new List<ReceivedSpan>();
        foreach (var resourceSpans in Fields(request, 1))
        {
            var (service, node) = ("", "");
            foreach (var resource in Fields(resourceSpans, 1))
            {
                foreach (var attribute in Fields(resource, 1))
                {
                    var value = Fields(attribute, 2).Select(v => String(v, 1)).FirstOrDefault() ?? "";
                    if (String(attribute, 1) == "service.name") service = value;
                    if (String(attribute, 1) == "controlplane.node") node = value;
                }
            }
            foreach (var scopeSpans in Fields(resourceSpans, 2))
            {
                var scope = Fields(scopeSpans, 1).Select(s => String(s, 1)).FirstOrDefault() ?? "";
                foreach (var span in Fields(scopeSpans, 2))
                {
                    // Span { ... repeated KeyValue attributes = 9; ... Status status = 15; }   Status { string message = 2; StatusCode code = 3; }
                    var key = Fields(span, 9).Where(a => String(a, 1) == "controlplane.key").SelectMany(a => Fields(a, 2)).Select(v => String(v, 1)).FirstOrDefault() ?? "";
                    spans.Add(new ReceivedSpan(service, scope, Hex(Fields(span, 1).FirstOrDefault()), Hex(Fields(span, 2).FirstOrDefault()),
                        Hex(Fields(span, 4).FirstOrDefault()), String(span, 5), Fields(span, 15).Select(status => Varint(status, 3)).FirstOrDefault(), key, node));
                }
            }
        }
        return spans;
    }

    /// <summary>The values of every length-delimited field <paramref name="number"/> of a message; other fields skipped.</summary>
    private static List<byte[]> Fields(byte[] message, int number)
    {
        var values = new List<byte[]>();
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == number && WireFormat.GetTagWireType(tag) == WireFormat.WireType.LengthDelimited)
            {
                values.Add(input.ReadBytes().ToByteArray());
            }
            else
            {
                input.SkipLastField();
            }
        }
        return values;
    }

    /// <summary>The value of varint field <paramref name="number"/> (0 when absent).</summary>
    private static int Varint(byte[] message, int number)
    {
        var input = new CodedInputStream(message);
        uint tag;
        while ((tag = input.ReadTag()) != 0)
        {
            if (WireFormat.GetTagFieldNumber(tag) == number && WireFormat.GetTagWireType(tag) == WireFormat.WireType.Varint) return input.ReadInt32();
            input.SkipLastField();
        }
        return 0;
    }

    private static string String(byte[] message, int number) =>
        Fields(message, number).Select(b => System.Text.Encoding.UTF8.GetString(b)).FirstOrDefault() ?? "";

    private static string Hex(byte[]? bytes) => bytes is null ? "" : Convert.ToHexStringLower(bytes);
}
