using System.Diagnostics;

namespace ControlPlane.NodeAgent.Tests;

internal static class Shell
{
    public static (int Code, string Output) Run(params string[] command)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output);
    }

    public static string Must(params string[] command)
    {
        var (code, output) = Run(command);
        if (code != 0) throw new InvalidOperationException($"{string.Join(' ', command)} failed ({code}): {output}");
        return output;
    }
}
