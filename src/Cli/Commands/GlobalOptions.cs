using System.CommandLine;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Cli.Settings;

namespace ControlPlane.Cli.Commands;

/// <summary>Options every command takes, and the shared per-command options (-o, -l, -A).</summary>
internal sealed class GlobalOptions
{
    public Option<string?> Server { get; } = new("--server", "-s")
    {
        Description = "Silo address(es), comma-separated; the next is tried when one is unavailable (default: NETCTL_SERVER, the config file, http://127.0.0.1:7070)",
        Recursive = true,
    };

    public Option<string?> Config { get; } = new("--config")
    {
        Description = "Configuration file (default: NETCTL_CONFIG, else $XDG_CONFIG_HOME/netctl/config.yaml, else ~/.config/netctl/config.yaml)",
        Recursive = true,
    };

    public Option<string?> Timeout { get; } = new("--timeout")
    {
        Description = "Deadline of each call, e.g. 30s, 500ms (default: NETCTL_TIMEOUT, the config file, 30s)",
        Recursive = true,
    };

    public Option<string?> Namespace { get; } = new("--namespace", "-n")
    {
        Description = "Namespace (default: NETCTL_NAMESPACE, the config file; listings without one cover all namespaces)",
        Recursive = true,
    };

    public Option<string?> Ca { get; } = new("--ca")
    {
        Description = "Cluster CA (PEM) that https:// servers' certificates must chain to (default: NETCTL_CA, the config file's ca)",
        Recursive = true,
    };

    public Option<string?> Cert { get; } = new("--cert")
    {
        Description = "Client certificate (PEM) for mutual TLS, from netctl pki issue (default: NETCTL_CERT, the config file's cert)",
        Recursive = true,
    };

    public Option<string?> Key { get; } = new("--key")
    {
        Description = "Private key (PEM) of --cert (default: NETCTL_KEY, the config file's key)",
        Recursive = true,
    };

    public void AddTo(Command root)
    {
        root.Options.Add(Ca);
        root.Options.Add(Cert);
        root.Options.Add(Key);
        root.Options.Add(Server);
        root.Options.Add(Config);
        root.Options.Add(Timeout);
        root.Options.Add(Namespace);
    }

    public CommandContext Context(ParseResult parse, Terminal terminal, string? dns = null)
    {
        var ns = parse.GetValue(Namespace);
        var settings = NetctlSettings.Resolve(parse.GetValue(Server), dns, ns, parse.GetValue(Timeout), parse.GetValue(Config),
            Environment.GetEnvironmentVariable, (parse.GetValue(Ca), parse.GetValue(Cert), parse.GetValue(Key)));
        return new CommandContext(settings, terminal) { NamespaceFromFlag = ns is not null };
    }

    /// <summary>
    /// <c>-o</c> with the formats a command prints, the first being the default. The option has no
    /// default value factory (help would show it as the enum spells it, "[default: Table]"): the
    /// default is said in the description as it is typed, and an absent option reads as
    /// default(OutputFormat), which is why the first format must be <see cref="OutputFormat.Table"/>.
    /// </summary>
    public static Option<OutputFormat> Output(params OutputFormat[] allowed)
    {
        if (allowed.Length == 0 || allowed[0] != default) throw new ArgumentException("the default output format is table, listed first", nameof(allowed));
        var option = new Option<OutputFormat>("--output", "-o")
        {
            Description = $"Output format: {string.Join("|", allowed.Select(Name))} (default: {Name(allowed[0])})",
            CustomParser = result =>
            {
                var text = result.Tokens.Count > 0 ? result.Tokens[^1].Value : Name(allowed[0]);
                foreach (var format in allowed)
                {
                    if (Name(format) == text) return format;
                }
                result.AddError($"-o {text} is not one of {string.Join(", ", allowed.Select(Name))}");
                return allowed[0];
            },
        };
        option.HelpName = string.Join("|", allowed.Select(Name));
        option.CompletionSources.Clear();
        option.CompletionSources.Add(allowed.Select(Name).ToArray());
        return option;
    }

    public static string Name(OutputFormat format) => format.ToString().ToLowerInvariant();

    public static Option<string?> Selector() => new("--selector", "-l")
    {
        Description = "Label selector: key=value, key!=value, key, !key (comma-separated, all must hold)",
    };

    public static Option<bool> AllNamespaces() => new("--all-namespaces", "-A")
    {
        Description = "Every namespace (overrides -n)",
    };

    /// <summary>The kind argument, completed with the kinds' names (those <paramref name="include"/> takes, when given).</summary>
    public static Argument<string> KindArgument(bool includeReadOnly = true, Func<ResourceKind, bool>? include = null, bool slashForm = false)
    {
        var kinds = ResourceKinds.All.Where(k => (includeReadOnly || !k.ReadOnly) && (include?.Invoke(k) ?? true)).ToList();
        var argument = new Argument<string>("kind")
        {
            HelpName = "kind",
            Description = "Kind: " + string.Join(", ", kinds.Select(k => $"{k.Aliases[0]} ({k.Aliases[2]})"))
                + (slashForm ? "; or name each object as KIND/NAME, as -o name prints it (svc/web, service/shop/web), kinds may differ" : string.Empty),
        };
        argument.CompletionSources.Add(kinds.Select(k => k.Aliases[0]).ToArray());
        return argument;
    }

    /// <summary>
    /// The objects a command's KIND and NAME arguments name, per kind in the order the kinds first
    /// appear: <c>KIND [NAME...]</c> (the names are NAME or NAMESPACE/NAME), or kubectl's
    /// <c>KIND/NAME...</c>, where every argument carries its kind (kinds may differ) and the name
    /// part is NAME or NAMESPACE/NAME, so that <c>get -o name</c> output (service/shop/web,
    /// clusterpeer/north) can be given back as it is. The two forms do not mix: a first argument
    /// with a '/' makes every argument KIND/NAME.
    /// </summary>
    public static List<(ResourceKind Kind, List<string> Names)> Named(string kindArgument, IReadOnlyList<string> names, bool writable = false)
    {
        if (!kindArgument.Contains('/', StringComparison.Ordinal))
        {
            if (!kindArgument.Contains(',', StringComparison.Ordinal)) return [(Kind(kindArgument, writable), [.. names])];
            // Several kinds, as kubectl takes them (svc,ep): the names, if any, in each.
            var kinds = new List<(ResourceKind Kind, List<string> Names)>();
            foreach (var part in kindArgument.Split(','))
            {
                if (part.Length == 0) throw CliException.Usage($"'{kindArgument}': separate kinds with single commas (e.g. svc,ep)");
                var kind = Kind(part, writable);
                if (!kinds.Exists(k => k.Kind == kind)) kinds.Add((kind, [.. names]));
            }
            return kinds;
        }
        var groups = new List<(ResourceKind Kind, List<string> Names)>();
        foreach (var argument in names.Prepend(kindArgument))
        {
            var slash = argument.IndexOf('/', StringComparison.Ordinal);
            if (slash < 0)
                throw CliException.Usage($"'{argument}': after a KIND/NAME argument, name every object as KIND/NAME (e.g. svc/web, service/shop/web), or give the kind once: KIND NAME...");
            var (kindName, name) = (argument[..slash], argument[(slash + 1)..]);
            if (kindName.Length == 0 || name.Length == 0) throw CliException.Usage($"'{argument}': write KIND/NAME, both non-empty");
            var kind = Kind(kindName, writable);
            var index = groups.FindIndex(g => g.Kind == kind);
            if (index < 0) groups.Add((kind, [name]));
            else groups[index].Names.Add(name);
        }
        return groups;
    }

    public static ResourceKind Kind(string name, bool writable = false)
    {
        var kind = ResourceKinds.Find(name)
            ?? throw CliException.Usage($"unknown kind '{name}' (one of {string.Join(", ", ResourceKinds.CommandLineNames)})");
        if (writable && kind.ReadOnly) throw CliException.Usage($"{kind.Name} objects are derived by the control plane and cannot be changed");
        return kind;
    }
}
