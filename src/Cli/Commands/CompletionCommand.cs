using System.CommandLine;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl completion bash|zsh</c>: a script for the shell that asks netctl itself for
/// completions through System.CommandLine's [suggest] directive (commands, options, kinds,
/// output formats, record types). Install with <c>source &lt;(netctl completion bash)</c>. The
/// script runs netctl as this process was run (<c>dotnet /path/netctl.dll</c>, or the program
/// itself), not by the word typed: an alias is not expanded in the completion function.
/// </summary>
internal static class CompletionCommand
{
    private const string Bash = """
        # netctl completion for bash: source <(netctl completion bash)
        _netctl_complete() {
          local line="${COMP_LINE:0:$COMP_POINT}"
          local args="${line#*[[:space:]]}"
          [[ "$args" == "$line" ]] && args=""
          local IFS=$'\n'
          COMPREPLY=( $(compgen -W "$(NETCTL "[suggest:${#args}]" "$args" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -o default -F _netctl_complete netctl
        """;

    private const string Zsh = """
        # netctl completion for zsh: source <(netctl completion zsh)
        autoload -U +X bashcompinit && bashcompinit

        """ + Bash;

    /// <summary>This netctl as a shell command: the dotnet host and netctl.dll, or netctl's own executable.</summary>
    private static string Invocation()
    {
        var program = Environment.ProcessPath ?? "netctl";
        var assembly = typeof(CompletionCommand).Assembly.Location;
        return Path.GetFileNameWithoutExtension(program) == "dotnet" && assembly.Length > 0
            ? $"{ShellQuote(program)} {ShellQuote(assembly)}"
            : ShellQuote(program);
    }

    private static string ShellQuote(string word) => "'" + word.Replace("'", "'\\''", StringComparison.Ordinal) + "'";

    public static Command Create()
    {
        var shell = new Argument<string>("shell") { Description = "bash or zsh" };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var command = new Command("completion", "Print a shell completion script (bash, zsh)") { shell };
        command.SetAction(parse =>
        {
            Console.Out.WriteLine((parse.GetValue(shell) == "zsh" ? Zsh : Bash).Replace("NETCTL", Invocation(), StringComparison.Ordinal));
            return ExitCodes.Success;
        });
        return command;
    }
}
