using System.Buffers;
using System.Text.Json;
using Grpc.Core;
using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace ControlPlane.Silo.Security;

/// <summary>
/// The audit log: one JSON object per line, each appended with a single write(2) on a file opened
/// O_APPEND. The kernel positions and serialises the appends (a regular file's write holds its
/// inode lock), so concurrent lines never interleave, even from several processes or after the
/// file was truncated by a log rotator, and no lock of ours is held. The line is built in a
/// per-thread buffer with Utf8JsonWriter. A line handed to the kernel survives the process's death
/// (kill -9), so a write the client heard acknowledged is always in the log. Power loss is not
/// covered (no fsync).
/// </summary>
public sealed class AuditLog : IDisposable
{
    private const int WriteOnly = 0x1, Create = 0x40, AppendOnly = 0x400, CloseOnExec = 0x80000;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    private readonly SafeFileHandle _file;

    public AuditLog(string path)
    {
        Path = path;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
        var fd = Open(path, WriteOnly | Create | AppendOnly | CloseOnExec, Convert.ToInt32("640", 8));
        if (fd < 0) throw new IOException($"cannot open the audit log {path}: errno {Marshal.GetLastPInvokeError()}");
        _file = new SafeFileHandle(fd, ownsHandle: true);
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
        WriteAll(buffer.WrittenSpan);
    }

    private void WriteAll(ReadOnlySpan<byte> line)
    {
        var added = false;
        _file.DangerousAddRef(ref added);
        try
        {
            var fd = (int)_file.DangerousGetHandle();
            // One call writes the whole line (a regular file is not written partially short of
            // ENOSPC or a signal); the loop covers those cases.
            for (var done = 0; done < line.Length;)
            {
                var n = Write(fd, ref MemoryMarshal.GetReference(line[done..]), (nuint)(line.Length - done));
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == 4) continue; // EINTR
                    throw new IOException($"cannot append to the audit log {Path}: errno {errno}");
                }
                done += (int)n;
            }
        }
        finally
        {
            if (added) _file.DangerousRelease();
        }
    }

    [DllImport("libc", EntryPoint = "open", SetLastError = true)]
    private static extern int Open([MarshalAs(UnmanagedType.LPUTF8Str)] string path, int flags, int mode);

    [DllImport("libc", EntryPoint = "write", SetLastError = true)]
    private static extern nint Write(int fd, ref byte buffer, nuint count);

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
