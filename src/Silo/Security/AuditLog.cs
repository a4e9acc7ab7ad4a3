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
/// With a size limit the log rotates itself: once the file passes it, the writer that notices
/// renames audit.jsonl to audit.jsonl.1 (older files move up one number, beyond the number kept
/// the oldest goes) and opens a new file. A writer that took the old handle just before finishes
/// its line in what is now audit.jsonl.1 (the rename keeps the inode, and the handle is closed
/// only after its last writer released it), so no line is lost or torn; at the boundary a line can
/// land in .1 after the first lines of the new file.
/// </summary>
public sealed class AuditLog : IDisposable
{
    private const int WriteOnly = 0x1, Create = 0x40, AppendOnly = 0x400, CloseOnExec = 0x80000;

    [ThreadStatic] private static ArrayBufferWriter<byte>? t_buffer;
    [ThreadStatic] private static Utf8JsonWriter? t_writer;

    private readonly long _maxFileBytes;
    private readonly int _maxFiles;
    private readonly Lock _rotation = new();
    private SafeFileHandle _file;
    private long _size;

    /// <param name="path">The file appended to.</param>
    /// <param name="maxFileBytes">Rotate once the file is larger than this (0: never).</param>
    /// <param name="maxFiles">Rotated files kept besides the current one (path.1 … path.N).</param>
    public AuditLog(string path, long maxFileBytes = 0, int maxFiles = 0)
    {
        Path = path;
        _maxFileBytes = maxFileBytes;
        _maxFiles = maxFiles;
        var directory = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path));
        try
        {
            if (!string.IsNullOrEmpty(directory)) Directory.CreateDirectory(directory);
            _file = OpenFile(path);
            _size = new FileInfo(path).Length;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // The silo does not start without its audit log; the setting is what to fix.
            throw new ControlPlane.Storage.Errors.ControlPlaneException(ControlPlane.Storage.Errors.ErrorCode.Unavailable,
                $"Audit:Path {path} cannot be used: {e.Message}", inner: e);
        }
    }

    public string Path { get; }

    /// <summary>
    /// Why the log cannot be appended to (null while it can): set by a failed append, cleared by
    /// the line that marks the gap (<see cref="TryResume"/>, which the next append or health probe
    /// tries first). The silo's health reports it: a silo that cannot audit answers every write
    /// INTERNAL.
    /// </summary>
    public string? Failure => Volatile.Read(ref _failure)?.Reason;

    private sealed record Outage(DateTimeOffset Since, string Reason);

    private readonly Lock _resume = new();
    private Outage? _failure;
    private bool _torn;

    private static SafeFileHandle OpenFile(string path)
    {
        var fd = Open(path, WriteOnly | Create | AppendOnly | CloseOnExec, Convert.ToInt32("640", 8));
        if (fd < 0) throw new IOException($"cannot open the audit log {path}: errno {Marshal.GetLastPInvokeError()}");
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Appends one entry; returns once the line is in the file (the kernel's page cache).</summary>
    public void Append(in AuditEntry entry)
    {
        // After an outage the gap's line comes first; while it cannot be written, neither can this.
        if (Volatile.Read(ref _failure) is { } outage && !TryResume(entry.Time))
        {
            throw new IOException($"cannot append to the audit log {Path}: {outage.Reason}");
        }
        var (buffer, json) = Writer();
        json.WriteStartObject();
        // ISO 8601 of a UTC DateTime ("…T01:51:02.1234567Z"): RFC 3339, formatted without allocating.
        json.WriteString("time", entry.Time.UtcDateTime);
        json.WriteString("caller", entry.Caller.Name);
        // A call refused as unauthenticated has no role.
        if (entry.Outcome != StatusCode.Unauthenticated) json.WriteString("role", Caller.RoleName(entry.Caller.Role));
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
        Commit(json, buffer, entry.Time);
    }

    /// <summary>
    /// While the log is failing (<see cref="Failure"/>), tries to append the line that marks the
    /// gap: <c>{"time":…,"event":"gap","since":…,"error":…}</c>, the writes between <c>since</c> and
    /// <c>time</c> having been answered INTERNAL unaudited. A line cut short when the file system
    /// filled up was cut off again; if that failed, it is ended first, so it stays one line that
    /// is not JSON (netctl audit counts it as torn) and the gap's line is whole. True once the log
    /// takes lines again
    /// (at once when it never failed).
    /// </summary>
    public bool TryResume(DateTimeOffset now)
    {
        if (Volatile.Read(ref _failure) is null) return true;
        // One writer at a time, so the gap gets one line.
        lock (_resume)
        {
            if (Volatile.Read(ref _failure) is not { } outage) return true;
            var (buffer, json) = Writer();
            var torn = Volatile.Read(ref _torn);
            if (torn)
            {
                buffer.GetSpan(1)[0] = (byte)'\n';
                buffer.Advance(1);
                json.Reset(buffer);
            }
            json.WriteStartObject();
            json.WriteString("time", now.UtcDateTime);
            json.WriteString("event", "gap");
            json.WriteString("since", outage.Since.UtcDateTime);
            json.WriteString("error", outage.Reason);
            json.WriteEndObject();
            try
            {
                Commit(json, buffer, now);
            }
            catch (IOException)
            {
                return false;
            }
            if (torn) Volatile.Write(ref _torn, false);
            Volatile.Write(ref _failure, null);
            return true;
        }
    }

    private static (ArrayBufferWriter<byte> Buffer, Utf8JsonWriter Json) Writer()
    {
        var buffer = t_buffer ??= new ArrayBufferWriter<byte>(512);
        buffer.ResetWrittenCount();
        var json = t_writer;
        if (json is null) t_writer = json = new Utf8JsonWriter(buffer, new JsonWriterOptions { SkipValidation = true });
        else json.Reset(buffer);
        return (buffer, json);
    }

    /// <summary>Ends the line and appends it; a failure starts an outage (only the gap's line ends it).</summary>
    private void Commit(Utf8JsonWriter json, ArrayBufferWriter<byte> buffer, DateTimeOffset time)
    {
        json.Flush();
        buffer.GetSpan(1)[0] = (byte)'\n';
        buffer.Advance(1);
        try
        {
            WriteAll(buffer.WrittenSpan);
        }
        catch (IOException e)
        {
            Interlocked.CompareExchange(ref _failure, new Outage(time, e.Message), null);
            throw;
        }
        if (_maxFileBytes > 0 && Interlocked.Add(ref _size, buffer.WrittenCount) > _maxFileBytes) Rotate();
    }

    /// <summary>Moves the full file aside (path → path.1, path.K → path.K+1) and appends to a new one.</summary>
    private void Rotate()
    {
        // Writers that find the file full wait here rather than append on: the file outgrows the
        // limit by at most one line per writer.
        lock (_rotation)
        {
            if (Interlocked.Read(ref _size) <= _maxFileBytes) return; // another writer rotated just now
            try
            {
                // Oldest first (highest number first), so that no move lands on a file not yet moved.
                foreach (var (number, file) in Contracts.Hosting.RotatedFiles.Rotated(Path))
                {
                    if (number >= _maxFiles) File.Delete(file);
                    else File.Move(file, $"{Path}.{number + 1}");
                }
                if (_maxFiles > 0) File.Move(Path, $"{Path}.1");
                else File.Delete(Path);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                // The lines are safe in the current file; try again after another MaxFileBytes.
                Interlocked.Exchange(ref _size, 0);
                return;
            }
            var old = Interlocked.Exchange(ref _file, OpenFile(Path));
            Interlocked.Exchange(ref _size, 0);
            old.Dispose(); // closed once the writers holding it are done
        }
    }

    private void WriteAll(ReadOnlySpan<byte> line)
    {
        SafeFileHandle file;
        var added = false;
        while (true)
        {
            file = Volatile.Read(ref _file);
            try
            {
                file.DangerousAddRef(ref added);
                break;
            }
            catch (ObjectDisposedException)
            {
                // Rotated between the read and the reference: the new handle is in _file.
            }
        }
        try
        {
            var fd = (int)file.DangerousGetHandle();
            // One call writes the whole line (a regular file is not written partially short of
            // ENOSPC or a signal); the loop covers those cases.
            for (var done = 0; done < line.Length;)
            {
                var n = Write(fd, ref MemoryMarshal.GetReference(line[done..]), (nuint)(line.Length - done));
                if (n < 0)
                {
                    var errno = Marshal.GetLastPInvokeError();
                    if (errno == 4) continue; // EINTR
                    // Part of the line is in the file (the file system filled up during it): cut
                    // it off again. Nothing can have been appended after it (the file system is
                    // full); should the cut fail, the gap's line ends it, so it stays one line
                    // that is not JSON.
                    if (done > 0 && !TrimEnd(file, done)) Volatile.Write(ref _torn, true);
                    throw new IOException($"cannot append to the audit log {Path}: errno {errno}");
                }
                done += (int)n;
            }
        }
        finally
        {
            if (added) file.DangerousRelease();
        }
    }

    /// <summary>Removes the last <paramref name="bytes"/> bytes of the file (a line cut short).</summary>
    private static bool TrimEnd(SafeFileHandle file, int bytes)
    {
        var length = RandomAccess.GetLength(file);
        return length >= bytes && Truncate((int)file.DangerousGetHandle(), length - bytes) == 0;
    }

    [DllImport("libc", EntryPoint = "ftruncate", SetLastError = true)]
    private static extern int Truncate(int fd, long length);

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

    public void Dispose() => Volatile.Read(ref _file).Dispose();
}

/// <summary>One audited call.</summary>
public readonly record struct AuditEntry(
    DateTimeOffset Time, Caller Caller, string Peer, string Method, string Kind, string? Namespace, string? Name,
    StatusCode Outcome, string? Revision, string? Error);
