using System.Buffers;
using System.Text.Json;
using Grpc.Core;
using Microsoft.Win32.SafeHandles;

namespace ControlPlane.Silo.Security;

/// <summary>
/// The audit log: one JSON object per line, appended with a single positioned write(2) per
/// entry. The line is built outside the lock in a per-thread buffer; only the write is
/// serialised (the offset is ours: the data-directory lock makes this process the file's only
/// writer). A line handed to the kernel survives the process's death (kill -9), so a write the
/// client heard acknowledged is always in the log. Power loss is not covered (no fsync).
/// </summary>
public sealed class AuditLog : IDisposable
{
    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    private readonly SafeFileHandle _file;
    private readonly Lock _lock = new();
    private long _offset;

    public AuditLog(string path)
    {
        Path = path;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        _file = File.OpenHandle(path, FileMode.OpenOrCreate, FileAccess.Write, FileShare.Read | FileShare.Delete);
        _offset = RandomAccess.GetLength(_file);
    }

    public string Path { get; }

    /// <summary>Appends one entry; returns once the line is in the file (the kernel's page cache).</summary>
    public void Append(in AuditEntry entry)
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(512);
        buffer.ResetWrittenCount();
        var json = t_writer;
        if (json is null) t_writer = json = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        else json.Reset(buffer);
        json.WriteStartObject();
        // ISO 8601 of a UTC DateTime ("…T01:51:02.1234567Z"): RFC 3339, formatted without allocating.
        json.WriteString("time", entry.Time.UtcDateTime);
        json.WriteString("caller", entry.Caller.Name);
        json.WriteString("role", RoleName(entry.Caller.Role));
        json.WriteBoolean("authenticated", entry.Caller.Authenticated);
        json.WriteString("peer", entry.Peer);
        json.WriteString("method", entry.Method);
        json.WriteString("kind", entry.Kind);
        if (!string.IsNullOrEmpty(entry.Namespace)) json.WriteString("namespace", entry.Namespace);
        if (!string.IsNullOrEmpty(entry.Name)) json.WriteString("name", entry.Name);
        json.WriteString("outcome", CodeName(entry.Outcome));
        if (!string.IsNullOrEmpty(entry.Revision)) json.WriteString("revision", entry.Revision);
        if (!string.IsNullOrEmpty(entry.Error)) json.WriteString("error", entry.Error);
        json.WriteEndObject();
        json.Flush();
        buffer.GetSpan(1)[0] = (byte)'\n';
        buffer.Advance(1);
        var line = buffer.WrittenSpan;
        lock (_lock)
        {
            RandomAccess.Write(_file, line, _offset);
            _offset += line.Length;
        }
    }

    /// <summary>gRPC's own names for status codes (OK, INVALID_ARGUMENT, RESOURCE_EXHAUSTED…).</summary>
    public static string CodeName(StatusCode code) => code switch
    {
        StatusCode.OK => "OK",
        StatusCode.Cancelled => "CANCELLED",
        StatusCode.Unknown => "UNKNOWN",
        StatusCode.InvalidArgument => "INVALID_ARGUMENT",
        StatusCode.DeadlineExceeded => "DEADLINE_EXCEEDED",
        StatusCode.NotFound => "NOT_FOUND",
        StatusCode.AlreadyExists => "ALREADY_EXISTS",
        StatusCode.PermissionDenied => "PERMISSION_DENIED",
        StatusCode.ResourceExhausted => "RESOURCE_EXHAUSTED",
        StatusCode.FailedPrecondition => "FAILED_PRECONDITION",
        StatusCode.Aborted => "ABORTED",
        StatusCode.OutOfRange => "OUT_OF_RANGE",
        StatusCode.Unimplemented => "UNIMPLEMENTED",
        StatusCode.Internal => "INTERNAL",
        StatusCode.Unavailable => "UNAVAILABLE",
        StatusCode.DataLoss => "DATA_LOSS",
        StatusCode.Unauthenticated => "UNAUTHENTICATED",
        _ => ((int)code).ToString(System.Globalization.CultureInfo.InvariantCulture),
    };

    private static string RoleName(Role role) => role switch
    {
        Role.Admin => "admin",
        Role.Orchestrator => "orchestrator",
        Role.Agent => "agent",
        Role.Reader => "reader",
        _ => role.ToString(),
    };

    public void Dispose() => _file.Dispose();
}

/// <summary>One audited call.</summary>
public readonly record struct AuditEntry(
    DateTimeOffset Time, Caller Caller, string Peer, string Method, string Kind, string? Namespace, string? Name,
    StatusCode Outcome, string? Revision, string? Error);
