using System.Globalization;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// A log that rotates by renaming (FILE → FILE.1, FILE.K → FILE.K+1), as the silo's audit log does:
/// its files oldest first, for whoever reads it back.
/// </summary>
public static class RotatedFiles
{
    /// <summary>FILE.N … FILE.1, then FILE (which may not exist yet).</summary>
    public static IEnumerable<string> OldestFirst(string path)
    {
        var directory = Path.GetDirectoryName(Path.GetFullPath(path))!;
        var prefix = Path.GetFileName(path) + ".";
        var rotated = Directory.Exists(directory)
            ? Directory.EnumerateFiles(directory, prefix + "*")
                // The pattern also matches FILE itself ("x.*" matches "x"): only FILE.<number> counts.
                .Select(f => (File: f, Name: Path.GetFileName(f)))
                .Select(f => (f.File, Number: f.Name.Length > prefix.Length && f.Name.StartsWith(prefix, StringComparison.Ordinal)
                    && int.TryParse(f.Name.AsSpan(prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : 0))
                .Where(f => f.Number > 0)
                .OrderByDescending(f => f.Number)
                .Select(f => f.File)
                .ToList()
            : [];
        return rotated.Append(path);
    }
}
