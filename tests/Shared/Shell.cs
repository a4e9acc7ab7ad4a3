using System.Diagnostics;

namespace ControlPlane.Tests.Shared;

/// <summary>Runs the commands tests set their world up with (ip, nft, ...), capturing what they print.</summary>
internal static class Shell
{
    /// <summary>Runs <paramref name="command"/> (program, then arguments): its exit code and its output, stderr after stdout.</summary>
    public static (int Code, string Output) Run(params string[] command)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var errors = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd() + errors.GetAwaiter().GetResult();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    /// <summary>Runs <paramref name="command"/>; a non-zero exit throws with what it printed.</summary>
    public static string Must(params string[] command)
    {
        var (code, output) = Run(command);
        if (code != 0) throw new InvalidOperationException($"{string.Join(' ', command)} failed ({code}): {output}");
        return output;
    }
}
