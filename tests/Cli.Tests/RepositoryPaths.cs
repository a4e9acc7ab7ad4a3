namespace ControlPlane.Cli.Tests;

internal static class RepositoryPaths
{
    /// <summary>The repository root: the nearest directory above the test binaries holding ControlPlane.sln.</summary>
    public static string Root { get; } = FindRoot();

    public static string Examples => Path.Combine(Root, "examples");

    public static string Example(string file) => Path.Combine(Examples, file);

    private static string FindRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "ControlPlane.sln"))) return directory.FullName;
        }
        throw new InvalidOperationException("ControlPlane.sln not found above " + AppContext.BaseDirectory);
    }
}
