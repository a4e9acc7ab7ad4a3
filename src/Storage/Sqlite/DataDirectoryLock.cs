using ControlPlane.Storage.Errors;

namespace ControlPlane.Storage.Sqlite;

/// <summary>
/// An exclusive lock on a data directory (an flock on its lock file), taken before anything in
/// it is opened: a second silo started on the same directory fails at once and touches nothing,
/// instead of fencing the running one. The lock dies with the process, kill -9 included.
/// </summary>
public sealed class DataDirectoryLock : IDisposable
{
    private readonly FileStream _file;

    private DataDirectoryLock(FileStream file) => _file = file;

    public static DataDirectoryLock Acquire(string directory)
    {
        try
        {
            Directory.CreateDirectory(directory);
            return new DataDirectoryLock(new FileStream(Path.Combine(directory, "controlplane.lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e) when (IsHeld(e))
        {
            throw new ControlPlaneException(ErrorCode.Unavailable,
                $"the data directory {Path.GetFullPath(directory)} is in use by another silo; stop it first or choose another Silo:DataDirectory", inner: e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // A path through a file, a read-only file system, no permission: the setting is what to fix.
            throw new ControlPlaneException(ErrorCode.Unavailable,
                $"Silo:DataDirectory {Path.GetFullPath(directory)} cannot be used: {e.Message}", inner: e);
        }
    }

    /// <summary>
    /// The HRESULT of the IOException for a lock another process holds: on Linux .NET takes the
    /// lock with flock and gives its errno, EWOULDBLOCK (11); elsewhere ERROR_SHARING_VIOLATION.
    /// </summary>
    private static bool IsHeld(IOException e) => e.HResult is 11 or unchecked((int)0x80070020);

    public void Dispose() => _file.Dispose();
}
