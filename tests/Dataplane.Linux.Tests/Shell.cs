using System.Diagnostics;

namespace ControlPlane.Dataplane.Linux.Tests;

/// <summary>Runs iproute2 and friends: the tools we did not write, used to read the kernel back.</summary>
internal static class Shell
{
    public static string Run(params string[] command)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = process.StandardOutput.ReadToEnd() + process.StandardError.ReadToEnd();
        process.WaitForExit();
        return output;
    }
}
