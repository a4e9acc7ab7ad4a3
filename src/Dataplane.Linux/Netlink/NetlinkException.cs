namespace ControlPlane.Dataplane.Linux.Netlink;

/// <summary>
/// The kernel refused a netlink request (NLMSG_ERROR with a negative errno). Callers branch on
/// <see cref="Errno"/> (or <see cref="IsNotFound"/> / <see cref="IsExists"/>), never on text.
/// </summary>
public sealed class NetlinkException(int errno, string operation, string? kernelReason = null)
    : Exception($"{operation}: {kernelReason ?? Describe(errno)} (errno {errno})")
{
    /// <summary>The kernel's extended-ACK explanation, when it gave one.</summary>
    public string? KernelReason { get; } = kernelReason;

    public const int EPERM = 1, ENOENT = 2, ESRCH = 3, EBUSY = 16, EEXIST = 17, ENODEV = 19, EINVAL = 22, ENETUNREACH = 101, EADDRNOTAVAIL = 99;

    public int Errno { get; } = errno;

    /// <summary>The object to change or delete is not there (ENOENT, ESRCH, ENODEV, EADDRNOTAVAIL).</summary>
    public bool IsNotFound => Errno is ENOENT or ESRCH or ENODEV or EADDRNOTAVAIL;

    public bool IsExists => Errno == EEXIST;

    private static string Describe(int errno) => errno switch
    {
        EPERM => "operation not permitted",
        ENOENT => "no such entry",
        ESRCH => "no such route",
        EBUSY => "busy",
        EEXIST => "already exists",
        ENODEV => "no such device",
        EINVAL => "invalid argument",
        EADDRNOTAVAIL => "address not available",
        ENETUNREACH => "network unreachable",
        _ => "kernel error",
    };
}
