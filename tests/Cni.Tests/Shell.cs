using System.Diagnostics;

namespace ControlPlane.Cni.Tests;

internal static class Shell
{
    /// <summary>Runs a command to its end; <paramref name="environment"/> adds variables, <paramref name="input"/> is its stdin.</summary>
    public static (int Code, string Output, string Error) Run(IReadOnlyDictionary<string, string>? environment, string? input, params string[] command)
    {
        var info = new ProcessStartInfo(command[0]) { RedirectStandardOutput = true, RedirectStandardError = true, RedirectStandardInput = true };
        foreach (var arg in command[1..]) info.ArgumentList.Add(arg);
        if (environment is not null)
        {
            foreach (var (key, value) in environment) info.Environment[key] = value;
        }
        using var process = Process.Start(info)!;
        if (input is not null) process.StandardInput.Write(input);
        process.StandardInput.Close();
        var error = process.StandardError.ReadToEndAsync();
        var output = process.StandardOutput.ReadToEnd();
        process.WaitForExit();
        return (process.ExitCode, output, error.Result);
    }

    public static (int Code, string Output) Run(params string[] command)
    {
        var (code, output, error) = Run(null, null, command);
        return (code, output + error);
    }

    public static string Must(params string[] command)
    {
        var (code, output) = Run(command);
        if (code != 0) throw new InvalidOperationException($"{string.Join(' ', command)} failed ({code}): {output}");
        return output;
    }
}
