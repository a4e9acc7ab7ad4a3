using System.Globalization;
using YamlDotNet.Core;
using YamlDotNet.RepresentationModel;

namespace ControlPlane.Cli.Settings;

/// <summary>
/// Where netctl connects and its defaults. Each setting comes from (first wins) the command line,
/// the environment (NETCTL_SERVER, NETCTL_DNS, NETCTL_NAMESPACE, NETCTL_TIMEOUT, NETCTL_CA,
/// NETCTL_CERT, NETCTL_KEY), the configuration
/// file (--config, NETCTL_CONFIG, else $XDG_CONFIG_HOME/netctl/config.yaml or
/// ~/.config/netctl/config.yaml), then the built-in default.
/// </summary>
internal sealed record NetctlSettings(IReadOnlyList<string> Servers, string Dns, string? Namespace, TimeSpan Timeout)
{
    public const string DefaultServer = "http://127.0.0.1:7070";
    public const string DefaultDns = "127.0.0.1:1053";
    public static readonly TimeSpan DefaultTimeout = TimeSpan.FromSeconds(30);

    /// <summary>Keys the configuration file may hold.</summary>
    public static readonly IReadOnlyList<string> FileKeys = ["server", "dns", "namespace", "timeout", "ca", "cert", "key"];

    /// <summary>Mutual TLS for https:// servers: the cluster CA and this user's certificate and key (PEM paths).</summary>
    public (string? Ca, string? Cert, string? Key) Tls { get; init; }

    public static NetctlSettings Resolve(string? serverFlag, string? dnsFlag, string? namespaceFlag, string? timeoutFlag, string? configFlag,
        Func<string, string?> environment, (string? Ca, string? Cert, string? Key) tlsFlags = default)
    {
        var file = ReadFile(configFlag ?? environment("NETCTL_CONFIG"), mustExist: configFlag is not null || environment("NETCTL_CONFIG") is not null, environment);
        var server = serverFlag ?? environment("NETCTL_SERVER") ?? file.GetValueOrDefault("server") ?? DefaultServer;
        var servers = server.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (servers.Length == 0) throw CliException.Usage("--server names no address");
        var timeout = ResolveTimeout(timeoutFlag, environment("NETCTL_TIMEOUT"), file);
        var ns = namespaceFlag ?? environment("NETCTL_NAMESPACE") ?? file.GetValueOrDefault("namespace");
        return new NetctlSettings(servers, dnsFlag ?? environment("NETCTL_DNS") ?? file.GetValueOrDefault("dns") ?? DefaultDns,
            string.IsNullOrEmpty(ns) ? null : ns, timeout)
        {
            Tls = (tlsFlags.Ca ?? environment("NETCTL_CA") ?? file.GetValueOrDefault("ca"),
                tlsFlags.Cert ?? environment("NETCTL_CERT") ?? file.GetValueOrDefault("cert"),
                tlsFlags.Key ?? environment("NETCTL_KEY") ?? file.GetValueOrDefault("key")),
        };
    }

    /// <summary>
    /// The timeout from the first place that sets it, refused naming that place: --timeout is a
    /// usage error (exit 2, the command line), NETCTL_TIMEOUT and the file's <c>timeout</c> are
    /// configuration errors (exit 1, as any other bad configuration file is).
    /// </summary>
    private static TimeSpan ResolveTimeout(string? flag, string? environmentValue, ConfigFile file)
    {
        if (flag is not null) return ParseDuration(flag, out var problem) ?? throw CliException.Usage($"--timeout {problem}");
        if (environmentValue is not null) return ParseDuration(environmentValue, out var problem) ?? throw new CliException($"NETCTL_TIMEOUT={environmentValue}: {problem}");
        if (file.Lines.TryGetValue("timeout", out var line))
            return ParseDuration(file["timeout"], out var problem) ?? throw new CliException($"{file.Path}: line {line}: timeout {problem}");
        return DefaultTimeout;
    }

    /// <summary>The configuration file used when none is named.</summary>
    public static string DefaultPath(Func<string, string?> environment)
    {
        var xdg = environment("XDG_CONFIG_HOME");
        var root = !string.IsNullOrEmpty(xdg) ? xdg : Path.Combine(environment("HOME") ?? Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".config");
        return Path.Combine(root, "netctl", "config.yaml");
    }

    /// <summary>"30s", "500ms", "2m", "1h" or a TimeSpan ("00:00:30"); not a bare number (.NET would read days), as no setting of the programs takes one.</summary>
    public static TimeSpan? ParseDuration(string text) => ParseDuration(text, out _);

    /// <summary>As <see cref="ParseDuration(string)"/>, with the reason a text is not a duration ("'10q' is not …").</summary>
    public static TimeSpan? ParseDuration(string text, out string? problem)
    {
        problem = null;
        text = text.Trim();
        if (text.Length > 0 && ControlPlane.Contracts.Hosting.StrictDurationConverter.IsBareNumber(text))
        {
            problem = $"'{text}' is a bare number: a duration needs a unit (e.g. {text}s, {text}ms, {text}m)";
            return null;
        }
        (string Suffix, double Scale)[] units = [("ms", 0.001), ("s", 1), ("m", 60), ("h", 3600)];
        foreach (var (suffix, scale) in units)
        {
            if (text.EndsWith(suffix, StringComparison.Ordinal)
                && double.TryParse(text[..^suffix.Length], NumberStyles.Float, CultureInfo.InvariantCulture, out var value) && value > 0)
            {
                return TimeSpan.FromSeconds(value * scale);
            }
        }
        if (TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) && span > TimeSpan.Zero) return span;
        problem = $"'{text}' is not a duration longer than zero (e.g. 30s, 500ms, 2m)";
        return null;
    }

    /// <summary>The settings a configuration file holds, and the line of each.</summary>
    private sealed class ConfigFile(string path) : Dictionary<string, string>(StringComparer.Ordinal)
    {
        public string Path { get; } = path;

        public Dictionary<string, int> Lines { get; } = new(StringComparer.Ordinal);
    }

    /// <summary>Every problem of the file is a configuration error (exit 1), naming the file and the line.</summary>
    private static ConfigFile ReadFile(string? path, bool mustExist, Func<string, string?> environment)
    {
        path ??= DefaultPath(environment);
        var values = new ConfigFile(path);
        if (!File.Exists(path))
        {
            if (mustExist) throw new CliException($"configuration file {path} does not exist");
            return values;
        }
        var stream = new YamlStream();
        try
        {
            using var reader = File.OpenText(path);
            stream.Load(reader);
        }
        catch (YamlException e)
        {
            throw new CliException($"{path}: line {e.Start.Line}, column {e.Start.Column}: {e.Message}");
        }
        if (stream.Documents.Count == 0 || stream.Documents[0].RootNode is YamlScalarNode { Value: null or "" }) return values;
        if (stream.Documents[0].RootNode is not YamlMappingNode root) throw new CliException($"{path}: expected a mapping of settings ({string.Join(", ", FileKeys)})");
        foreach (var (keyNode, valueNode) in root.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? string.Empty;
            if (!FileKeys.Contains(key))
                throw new CliException($"{path}: line {keyNode.Start.Line}: unknown setting '{key}' (known: {string.Join(", ", FileKeys)})");
            values[key] = valueNode switch
            {
                YamlScalarNode scalar => scalar.Value ?? string.Empty,
                // server: [a, b] is the same as server: "a,b".
                YamlSequenceNode list when key == "server" => string.Join(",", list.Children.OfType<YamlScalarNode>().Select(s => s.Value)),
                _ => throw new CliException($"{path}: line {valueNode.Start.Line}: '{key}' must be a single value"),
            };
            values.Lines[key] = (int)valueNode.Start.Line;
        }
        return values;
    }
}
