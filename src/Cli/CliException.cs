namespace ControlPlane.Cli;

/// <summary>A failure netctl reports in one line and exits with <see cref="ExitCode"/> (1, or 2 for usage).</summary>
internal class CliException(string message, int exitCode = ExitCodes.Error) : Exception(message)
{
    public int ExitCode { get; } = exitCode;

    public static CliException Usage(string message) => new(message, ExitCodes.Usage);
}
