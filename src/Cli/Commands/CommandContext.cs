using ControlPlane.Cli.Connection;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Resources;
using ControlPlane.Cli.Settings;

namespace ControlPlane.Cli.Commands;

/// <summary>What every command gets: the resolved settings, the silos (connected lazily) and the terminal.</summary>
internal sealed class CommandContext(NetctlSettings settings, Terminal terminal) : IDisposable
{
    private ServerSet? _servers;

    public NetctlSettings Settings { get; } = settings;

    public Terminal Terminal { get; } = terminal;

    /// <summary>True when -n came from the command line (a manifest's namespace must then match it).</summary>
    public bool NamespaceFromFlag { get; init; }

    public ServerSet Servers => _servers ??= new ServerSet(Settings.Servers, Settings.Timeout,
        (address, detail) => Terminal.Error.WriteLine($"warning: server {address} is unavailable ({detail})"), Settings.ClientTls());

    /// <summary>The namespace a listing covers: "" for all.</summary>
    public string ListNamespace(ResourceKind kind, bool allNamespaces) =>
        !kind.Namespaced || allNamespaces ? string.Empty : Settings.Namespace ?? string.Empty;

    /// <summary>
    /// "ns/name" or "name" (with -n or the configured namespace) → namespace and name. An "ns/name"
    /// that contradicts an explicit -n is a usage error unless <paramref name="qualifiedWins"/>
    /// (explain's two peers may sit in two namespaces, with -n for the unqualified one).
    /// </summary>
    public (string Namespace, string Name) Reference(ResourceKind kind, string text, bool qualifiedWins = false)
    {
        var slash = text.IndexOf('/', StringComparison.Ordinal);
        if (!kind.Namespaced)
        {
            if (slash >= 0) throw CliException.Usage($"a {kind.Name} is cluster-scoped: name it without a namespace ('{text}')");
            return (string.Empty, text);
        }
        if (slash >= 0)
        {
            var (space, name) = (text[..slash], text[(slash + 1)..]);
            if (space.Length == 0 || name.Length == 0)
                throw CliException.Usage($"'{text}': write NAMESPACE/NAME, both non-empty");
            if (NamespaceFromFlag && !qualifiedWins && Settings.Namespace != space)
                throw CliException.Usage($"'{text}' is in namespace '{space}', but -n says '{Settings.Namespace}': give one of them");
            return (space, name);
        }
        return Settings.Namespace is { } ns
            ? (ns, text)
            : throw CliException.Usage($"which namespace holds {kind.Name.ToLowerInvariant()} '{text}'? Pass -n NAMESPACE or write NAMESPACE/{text}");
    }

    public void Dispose() => _servers?.Dispose();
}
