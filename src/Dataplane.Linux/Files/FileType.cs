using System.Runtime.InteropServices;
using System.Text;

namespace ControlPlane.Dataplane.Linux.Files;

/// <summary>What a path is, as stat reports it (symbolic links followed, as connect(2) and open(2) follow them).</summary>
public enum FileKind
{
    /// <summary>Nothing there (ENOENT, ENOTDIR).</summary>
    Missing,
    Socket,
    Regular,
    Directory,
    Other,
    /// <summary>stat itself failed otherwise (a permission on the way, say).</summary>
    Unknown,
}

/// <summary>The type of a file, from statx(2): its layout is the same on every architecture (struct stat's is not).</summary>
public static partial class FileType
{
    private const int AtFdCwd = -100;
    private const uint StatxType = 0x1;
    private const int ModeOffset = 28; // struct statx: u32 mask, u32 blksize, u64 attributes, u32 nlink, u32 uid, u32 gid, u16 mode
    private const int StatxSize = 256;
    private const int Enoent = 2;
    private const int Enotdir = 20;

    public static FileKind Of(string path)
    {
        var name = Encoding.UTF8.GetBytes(path + "\0");
        var buffer = new byte[StatxSize];
        int result;
        unsafe
        {
            fixed (byte* p = name)
            fixed (byte* b = buffer)
            {
                result = statx(AtFdCwd, p, 0, StatxType, b);
            }
        }
        if (result != 0)
        {
            return Marshal.GetLastPInvokeError() is Enoent or Enotdir ? FileKind.Missing : FileKind.Unknown;
        }
        return (BitConverter.ToUInt16(buffer, ModeOffset) & 0xF000) switch
        {
            0xC000 => FileKind.Socket,
            0x8000 => FileKind.Regular,
            0x4000 => FileKind.Directory,
            _ => FileKind.Other,
        };
    }

    /// <summary>How <see cref="Of"/>'s answer reads after "path: " (a socket reads as "is a socket").</summary>
    public static string Describe(FileKind kind) => kind switch
    {
        FileKind.Missing => "does not exist",
        FileKind.Socket => "is a socket",
        FileKind.Regular => "is not a socket (a regular file)",
        FileKind.Directory => "is not a socket (a directory)",
        FileKind.Other => "is not a socket",
        _ => "cannot be examined",
    };

    [LibraryImport("libc", SetLastError = true)]
    private static unsafe partial int statx(int dirfd, byte* path, int flags, uint mask, byte* buffer);
}
