using System.CommandLine;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl completion bash|zsh</c>: a script for the shell that asks netctl itself for
/// completions through System.CommandLine's [suggest] directive (commands, options, kinds,
/// output formats, record types). Install with <c>source &lt;(netctl completion bash)</c>.
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
          COMPREPLY=( $(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${#args}]" "$args" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -o default -F _netctl_complete netctl
        """;

    private const string Zsh = """
        # netctl completion for zsh: source <(netctl completion zsh)
        autoload -U +X bashcompinit && bashcompinit

        """ + Bash;

    public static Command Create()
    {
        var shell = new Argument<string>("shell") { Description = "bash or zsh" };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var command = new Command("completion", "Print a shell completion script (bash, zsh)") { shell };
        command.SetAction(parse =>
        {
            Console.Out.WriteLine(parse.GetValue(shell) == "zsh" ? Zsh : Bash);
            return ExitCodes.Success;
        });
        return command;
    }
}
