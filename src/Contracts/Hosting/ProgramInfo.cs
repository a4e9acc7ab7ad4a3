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

    /// <summary>Sections every program reads besides its own (.NET's logging and host settings).</summary>
    private static readonly string[] CommonSections = ["Logging", "Kestrel", "AllowedHosts", "urls", "environment", "contentRoot", "applicationName"];

    /// <summary>
    /// What <paramref name="args"/> settle before the program starts: the usage or the version
    /// printed (exit 0), or a setting of a section the program does not read (exit 2: a typo such
    /// as --Slio:DataDirectory would otherwise be dropped silently and the default used). Null:
    /// start the program.
    /// </summary>
    /// <param name="sections">The configuration sections the program reads.</param>
    public static int? EarlyExit(string[] args, string program, string usage, params string[] sections)
    {
        if (args.Any(a => a is "--version" or "-V"))
        {
            Console.Out.WriteLine($"{program} {Version}");
            return 0;
        }
        if (args.Any(a => a is "--help" or "-h" or "-?"))
        {
            Console.Out.WriteLine($"{program} {Version}\n\n{usage.TrimEnd()}\n");
            Console.Out.WriteLine("""
                Settings come from (later wins): the program's JSON file beside its binary, environment
                variables with the CONTROLPLANE_ prefix (Section__Key), and --Section:Key=value arguments.
                """);
            return 0;
        }
        StrictDurationConverter.Install();
        if (UnknownSetting(args, sections) is { } unknown)
        {
            Console.Error.WriteLine(IsStray(unknown)
                ? $"{program}: '{unknown}' is not a setting: this program takes no arguments but settings, written --Section:Key=value; see --help"
                : sections.Length == 0
                ? $"{program}: unknown setting '{unknown}': this program takes no settings; see --help"
                : $"{program}: unknown setting '{unknown}': this program reads the sections {string.Join(", ", sections)} (and Logging); see --help");
            return 2;
        }
        return null;
    }

    /// <summary>
    /// What a failure to start says: its message, and for a setting the configuration could not
    /// convert (<c>Failed to convert configuration value '30' at 'X:Y'…</c>) also why.
    /// </summary>
    public static string Reason(Exception e) =>
        e is InvalidOperationException { InnerException: FormatException format } ? $"{e.Message} {format.Message}" : e.Message;

    /// <summary>
    /// The first command-line setting (as .NET's command-line configuration reads them:
    /// --Key=value, --Key value, /Key=value, Key=value) whose section is not one of
    /// <paramref name="sections"/>, or null. Keys are case-insensitive, as configuration is.
    /// </summary>
    public static string? UnknownSetting(IReadOnlyList<string> args, IReadOnlyCollection<string> sections)
    {
        for (var i = 0; i < args.Count; i++)
        {
            var arg = args[i];
            // A word that is none of these, the configuration would drop without a word.
            if (IsStray(arg)) return arg;
            var key = arg.StartsWith("--", StringComparison.Ordinal) ? arg[2..] : arg.StartsWith('/') ? arg[1..] : arg;
            var equals = key.IndexOf('=', StringComparison.Ordinal);
            if (equals < 0) i++; // --Key value: the next argument is the value
            else key = key[..equals];
            var colon = key.IndexOf(':', StringComparison.Ordinal);
            var section = colon < 0 ? key : key[..colon];
            if (!sections.Concat(CommonSections).Contains(section, StringComparer.OrdinalIgnoreCase)) return arg;
        }
        return null;
    }

    /// <summary>An argument that is no setting: neither --Key, /Key nor Key=value (the value after a bare --Key is skipped before this is asked).</summary>
    private static bool IsStray(string arg) =>
        !arg.StartsWith("--", StringComparison.Ordinal) && !arg.StartsWith('/') && !arg.Contains('=', StringComparison.Ordinal);
}
