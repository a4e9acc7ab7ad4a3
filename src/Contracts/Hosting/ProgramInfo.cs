using System.Reflection;

namespace ControlPlane.Contracts.Hosting;

/// <summary>
/// <c>--help</c> and <c>--version</c>, answered by every program before it touches anything
/// (no configuration read, no port bound, no data directory opened).
/// </summary>
public static class ProgramInfo
{
    /// <summary>The version of the running program (informational version of its assembly).</summary>
    public static string Version =>
        Assembly.GetEntryAssembly()?.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion.Split('+')[0] ?? "0.0.0";

    /// <summary>
    /// Prints the usage or the version when <paramref name="args"/> ask for it and returns true;
    /// the caller then exits with 0.
    /// </summary>
    public static bool Answered(string[] args, string program, string usage)
    {
        if (args.Any(a => a is "--version" or "-V"))
        {
            Console.Out.WriteLine($"{program} {Version}");
            return true;
        }
        if (args.Any(a => a is "--help" or "-h" or "-?"))
        {
            Console.Out.WriteLine($"{program} {Version}\n\n{usage.TrimEnd()}\n");
            Console.Out.WriteLine("""
                Settings come from (later wins): the program's JSON file beside its binary, environment
                variables with the CONTROLPLANE_ prefix (Section__Key), and --Section:Key=value arguments.
                """);
            return true;
        }
        return false;
    }
}
