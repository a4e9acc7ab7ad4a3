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
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, "controlplane.lock");
        try
        {
            return new DataDirectoryLock(new FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None));
        }
        catch (IOException e)
        {
            throw new ControlPlaneException(ErrorCode.Unavailable,
                $"the data directory {Path.GetFullPath(directory)} is in use by another silo; stop it first or choose another Silo:DataDirectory", inner: e);
        }
    }

    public void Dispose() => _file.Dispose();
}
