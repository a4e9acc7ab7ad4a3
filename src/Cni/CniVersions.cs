namespace ControlPlane.Cni;

/// <summary>The spec versions the plugin speaks, and what each allows.</summary>
public static class CniVersions
{
    public const string Latest = "1.1.0";

    /// <summary>0.3.x and 0.4.0 results carry "version" in each ip; CHECK came with 0.4.0; GC and STATUS with 1.1.0.</summary>
    public static readonly IReadOnlyList<string> Supported = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"];

    public static bool IsSupported(string version) => Supported.Contains(version, StringComparer.Ordinal);

    /// <summary>Whether <paramref name="version"/> is at least <paramref name="minimum"/> (both supported versions).</summary>
    public static bool AtLeast(string version, string minimum) =>
        Version.TryParse(version, out var v) && Version.TryParse(minimum, out var m) && v >= m;
}
