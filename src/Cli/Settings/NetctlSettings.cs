using System.Globalization;
using ControlPlane.Contracts.Client;
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

    /// <summary>Where each of <see cref="Tls"/> came from (null: not set).</summary>
    public (SettingSource? Ca, SettingSource? Cert, SettingSource? Key) TlsSources { get; init; }

    public static NetctlSettings Resolve(string? serverFlag, string? dnsFlag, string? namespaceFlag, string? timeoutFlag, string? configFlag,
        Func<string, string?> environment, (string? Ca, string? Cert, string? Key) tlsFlags = default)
    {
        var file = ReadFile(configFlag ?? environment("NETCTL_CONFIG"), mustExist: configFlag is not null || environment("NETCTL_CONFIG") is not null, environment);
        var server = serverFlag ?? environment("NETCTL_SERVER") ?? file.GetValueOrDefault("server") ?? DefaultServer;
        var servers = server.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (servers.Length == 0) throw CliException.Usage("--server names no address");
        var timeout = ResolveTimeout(timeoutFlag, environment("NETCTL_TIMEOUT"), file);
        var ns = namespaceFlag ?? environment("NETCTL_NAMESPACE") ?? file.GetValueOrDefault("namespace");
        var (ca, caSource) = Pick(tlsFlags.Ca, "--ca", "NETCTL_CA", "ca", environment, file);
        var (cert, certSource) = Pick(tlsFlags.Cert, "--cert", "NETCTL_CERT", "cert", environment, file);
        var (key, keySource) = Pick(tlsFlags.Key, "--key", "NETCTL_KEY", "key", environment, file);
        return new NetctlSettings(servers, dnsFlag ?? environment("NETCTL_DNS") ?? file.GetValueOrDefault("dns") ?? DefaultDns,
            string.IsNullOrEmpty(ns) ? null : ns, timeout)
        {
            Tls = (ca, cert, key),
            TlsSources = (caSource, certSource, keySource),
        };
    }

    /// <summary>
    /// A file path setting's value from the first place that sets it, and that place. A relative
    /// path in the configuration file is relative to the file's directory (as kubectl reads a
    /// kubeconfig), so the file works from any working directory; on the command line and in the
    /// environment it is relative to the working directory, as usual.
    /// </summary>
    private static (string? Value, SettingSource? Source) Pick(string? flagValue, string flag, string variable, string fileKey,
        Func<string, string?> environment, ConfigFile file)
    {
        if (flagValue is not null) return (flagValue, new SettingSource(flag, CommandLine: true));
        if (environment(variable) is { } fromEnvironment) return (fromEnvironment, new SettingSource($"{variable}={fromEnvironment}", CommandLine: false));
        if (file.TryGetValue(fileKey, out var fromFile)) return (Path.Combine(Path.GetDirectoryName(Path.GetFullPath(file.Path))!, fromFile), new SettingSource($"{file.Path}: line {file.Lines[fileKey]}: {fileKey}", CommandLine: false));
        return (null, null);
    }

    /// <summary>
    /// The mutual TLS the settings ask for (null: none), checked by
    /// <see cref="Contracts.Client.ClientTls.FromSettings"/> with each setting named by where it came
    /// from (--cert, NETCTL_CERT=…, the configuration file's line). As for the timeout, a problem is a
    /// usage error (exit 2) only when every setting it is about came from the command line;
    /// otherwise it is a configuration error (exit 1).
    /// </summary>
    public ClientTls? ClientTls()
    {
        var (ca, cert, key) = Tls;
        SettingSource?[] sources = [TlsSources.Ca, TlsSources.Cert, TlsSources.Key];
        var tls = Contracts.Client.ClientTls.FromSettings(ca, cert, key,
            (sources[0]?.Where ?? "--ca", sources[1]?.Where ?? "--cert", sources[2]?.Where ?? "--key"),
            ("--ca, NETCTL_CA or ca: in the configuration file", "--cert, NETCTL_CERT or cert: in the configuration file", "--key, NETCTL_KEY or key: in the configuration file"),
            out var problems);
        if (problems.Count == 0) return tls;
        // Every problem, each on its line and naming its settings.
        var message = string.Join("\n  ", problems.Select(p => p.Message));
        return problems.SelectMany(p => p.About).All(i => sources[i]?.CommandLine == true) ? throw CliException.Usage(message) : throw new CliException(message);
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
        // Every problem of the file at once, in the file's order: fixing one should not uncover the next.
        var problems = new List<string>();
        foreach (var (keyNode, valueNode) in root.Children)
        {
            var key = ((YamlScalarNode)keyNode).Value ?? string.Empty;
            if (!FileKeys.Contains(key))
            {
                problems.Add($"{path}: line {keyNode.Start.Line}: unknown setting '{key}' (known: {string.Join(", ", FileKeys)})");
                continue;
            }
            string? value = valueNode switch
            {
                YamlScalarNode scalar => scalar.Value ?? string.Empty,
                // server: [a, b] is the same as server: "a,b".
                YamlSequenceNode list when key == "server" => string.Join(",", list.Children.OfType<YamlScalarNode>().Select(s => s.Value)),
                _ => null,
            };
            if (value is null)
            {
                problems.Add($"{path}: line {valueNode.Start.Line}: '{key}' must be a single value");
                continue;
            }
            if (key == "timeout" && ParseDuration(value, out var problem) is null) problems.Add($"{path}: line {valueNode.Start.Line}: timeout {problem}");
            values[key] = value;
            values.Lines[key] = (int)valueNode.Start.Line;
        }
        if (problems.Count > 0) throw new CliException(string.Join("\n", problems));
        return values;
    }
}

/// <summary>Where a setting came from, as messages name it ("--cert", "NETCTL_CERT=bob.crt", "config.yaml: line 4: cert").</summary>
internal sealed record SettingSource(string Where, bool CommandLine);
