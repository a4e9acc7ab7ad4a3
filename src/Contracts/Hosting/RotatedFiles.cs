using System.Globalization;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// A log that rotates by renaming (FILE → FILE.1, FILE.K → FILE.K+1), as the silo's audit log does:
/// its files oldest first, for whoever reads it back.
/// </summary>
public static class RotatedFiles
{
    /// <summary>FILE.N … FILE.1, then FILE (which may not exist yet).</summary>
    public static IEnumerable<string> OldestFirst(string path) => Rotated(path).Select(r => r.File).Append(path);

    /// <summary>The rotated files FILE.N … FILE.1 with their numbers, highest (oldest) first.</summary>
    public static List<(int Number, string File)> Rotated(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        if (!Directory.Exists(directory)) return [];
        var prefix = Path.GetFileName(path) + ".";
        // The pattern also matches FILE itself ("x.*" matches "x"): only FILE.<number> counts.
        return Directory.EnumerateFiles(directory, prefix + "*")
            .Select(f => (Number: Number(Path.GetFileName(f), prefix), File: f))
            .Where(f => f.Number > 0)
            .OrderByDescending(f => f.Number)
            .ToList();
    }

    private static int Number(string name, string prefix) =>
        name.Length > prefix.Length && name.StartsWith(prefix, StringComparison.Ordinal)
        && int.TryParse(name.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0;
}
