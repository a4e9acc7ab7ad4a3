using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;

namespace ControlPlane.Dns.Tests;

/// <summary>Runs dig or kdig (clients this project did not write) and reads what they print.</summary>
internal static partial class Dig
{
    public static async Task<string> RunAsync(IPEndPoint server, string tool, params string[] args)
    {
        var info = new ProcessStartInfo(tool) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[$"@{server.Address}", "-p", server.Port.ToString(CultureInfo.InvariantCulture), "+time=2", tool == "kdig" ? "+retry=0" : "+tries=1", .. args]) info.ArgumentList.Add(arg);
        using var process = Process.Start(info)!;
        var output = await process.StandardOutput.ReadToEndAsync();
        await process.WaitForExitAsync();
        return output + await process.StandardError.ReadToEndAsync();
    }

    /// <summary>dig's or kdig's full output as status, header flags and sections (records with single spaces).</summary>
    public static DigOutput Parse(string output)
    {
        var status = StatusLine().Match(output);
        var flags = FlagsLine().Match(output);
        return new DigOutput(status.Success ? status.Groups[1].Value : "(no status)", flags.Success ? flags.Groups[1].Value.Split(' ') : [],
            Section(output, "ANSWER"), Section(output, "AUTHORITY"), output);
    }

    private static List<string> Section(string output, string name)
    {
        var lines = output.Split('\n');
        var start = Array.FindIndex(lines, l => l.StartsWith($";; {name} SECTION:", StringComparison.Ordinal));
        if (start < 0) return [];
        return [.. lines.Skip(start + 1).TakeWhile(l => l.Trim().Length > 0 && !l.StartsWith(";;", StringComparison.Ordinal))
            .Select(l => Blanks().Replace(l.Trim(), " "))];
    }

    [GeneratedRegex(@"status: ([A-Z]+)")]
    private static partial Regex StatusLine();

    [GeneratedRegex(@"[Ff]lags: ([a-z ]+);")]
    private static partial Regex FlagsLine();

    [GeneratedRegex(@"\s+")]
    private static partial Regex Blanks();
}

/// <summary>What dig printed: rcode name, header flags, answer and authority records.</summary>
internal sealed record DigOutput(string Status, string[] Flags, List<string> Answer, List<string> Authority, string Text)
{
    public bool Authoritative => Flags.Contains("aa");

    public override string ToString() => Text;
}
