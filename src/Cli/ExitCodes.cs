namespace ControlPlane.Cli;

/// <summary>netctl's exit codes.</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>Anything that went wrong: a refused manifest, an RPC failure, an unreachable server.</summary>
    public const int Error = 1;

    /// <summary>The command line itself is wrong (unknown command, option or kind, missing argument).</summary>
    public const int Usage = 2;

    /// <summary>Standard output's reader went away (`netctl watch … | head -1`): 128 + SIGPIPE, as a shell reports a program that signal ended.</summary>
    public const int BrokenPipe = 141;
}
