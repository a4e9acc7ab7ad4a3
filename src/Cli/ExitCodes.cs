namespace ControlPlane.Cli;

/// <summary>netctl's exit codes.</summary>
internal static class ExitCodes
{
    public const int Success = 0;

    /// <summary>Anything that went wrong: a refused manifest, an RPC failure, an unreachable server.</summary>
    public const int Error = 1;

    /// <summary>The command line itself is wrong (unknown command, option or kind, missing argument).</summary>
    public const int Usage = 2;
}
