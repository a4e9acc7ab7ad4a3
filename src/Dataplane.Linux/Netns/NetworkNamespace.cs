using System.Collections.Concurrent;
using System.Runtime.InteropServices;

namespace ControlPlane.Dataplane.Linux.Netns;

/// <summary>
/// Runs work inside a network namespace on a dedicated thread that entered it with setns(2).
/// Only that thread is moved, so the rest of the process stays where it was; sockets opened by
/// the work (netlink included) stay in the namespace for life.
/// </summary>
public sealed partial class NetworkNamespace : IDisposable
{
    private const int CloneNewNet = 0x40000000;

    /// <summary>ioctl NS_GET_NSTYPE (_IO(0xb7, 0x3)): the namespace type of an nsfs file.</summary>
    private const nuint NsGetNsType = 0xb703;
    private readonly BlockingCollection<Action> _work = [];
    private readonly Thread _thread;

    private NetworkNamespace(string path)
    {
        Path = path;
        var entered = new TaskCompletionSource();
        _thread = new Thread(() =>
        {
            try
            {
                using var handle = File.OpenHandle(path);
                if (setns((int)handle.DangerousGetHandle(), CloneNewNet) != 0)
                {
                    throw new IOException($"setns({path}) failed: errno {Marshal.GetLastPInvokeError()}");
                }
                entered.SetResult();
            }
            catch (Exception e)
            {
                entered.SetException(e);
                return;
            }
            foreach (var item in _work.GetConsumingEnumerable())
            {
                item();
            }
            // The collection is not disposed here: CompleteAdding, on the caller's thread, may
            // still be running when this loop sees it and ends, and disposing under it made
            // CompleteAdding throw ObjectDisposedException. It holds no unmanaged resources.
        }) { IsBackground = true, Name = "netns " + System.IO.Path.GetFileName(path) };
        _thread.Start();
        entered.Task.GetAwaiter().GetResult();
    }

    /// <summary>The namespace file, e.g. /var/run/netns/blue or /proc/123/ns/net.</summary>
    public string Path { get; }

    /// <summary>Enters the namespace at <paramref name="path"/>; a bare name means /var/run/netns/&lt;name&gt;.</summary>
    public static NetworkNamespace Enter(string path) =>
        new(path.Contains('/') ? path : "/var/run/netns/" + path);

    /// <summary>
    /// Whether <paramref name="path"/> is a network namespace as this process sees it. A path that
    /// names one in another mount namespace (a runtime's private bind mount) is an ordinary file
    /// here, or nothing at all.
    /// </summary>
    public static bool IsNetworkNamespace(string path)
    {
        try
        {
            using var handle = File.OpenHandle(path);
            return ioctl((int)handle.DangerousGetHandle(), NsGetNsType) == CloneNewNet;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Whether <paramref name="path"/> is this process's own network namespace (for the node
    /// agent: the host's): the same nsfs device and inode as /proc/self/ns/net.
    /// </summary>
    public static bool IsOwn(string path) => Identity(path) is { } identity && identity == Identity("/proc/self/ns/net");

    private static (ulong Device, ulong Inode)? Identity(string path)
    {
        try
        {
            using var handle = File.OpenHandle(path);
            // struct stat begins with st_dev and st_ino, 64 bits each, on x86-64 and arm64.
            Span<byte> stat = stackalloc byte[256];
            if (fstat((int)handle.DangerousGetHandle(), ref MemoryMarshal.GetReference(stat)) != 0) return null;
            return (MemoryMarshal.Read<ulong>(stat), MemoryMarshal.Read<ulong>(stat[8..]));
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return null;
        }
    }

    /// <summary>Runs <paramref name="work"/> inside the namespace and returns its result.</summary>
    public T Invoke<T>(Func<T> work)
    {
        // Completed synchronously: the caller blocks on it, and an asynchronous completion would
        // need a free thread-pool thread just to wake it (measured: 200 ms stalls under load).
        var done = new TaskCompletionSource<T>();
        _work.Add(() =>
        {
            try { done.SetResult(work()); }
            catch (Exception e) { done.SetException(e); }
        });
        return done.Task.GetAwaiter().GetResult();
    }

    public void Invoke(Action work) => Invoke(() => { work(); return true; });

    /// <summary>
    /// Ends the thread once queued work is done. It is not waited for: a thread that left the
    /// process's namespace can take a long while to exit (measured: up to 250 ms), and callers such
    /// as the attach path should not pay for that.
    /// </summary>
    public void Dispose() => _work.CompleteAdding();

    [LibraryImport("libc", SetLastError = true)]
    private static partial int setns(int fd, int nstype);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int ioctl(int fd, nuint request);

    [LibraryImport("libc", SetLastError = true)]
    private static partial int fstat(int fd, ref byte buffer);
}
