using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ControlPlane.Cni;

/// <summary>
/// The plugin configuration on stdin (one entry of a network configuration list, as the runtime
/// derives it). The plugin's own keys:
/// <list type="bullet">
/// <item><c>network</c> (required): the control plane's network to attach to;</item>
/// <item><c>agentSocket</c>: the node agent's attach socket (default /run/controlplane/agent.sock);</item>
/// <item><c>namespace</c>: the endpoint's namespace when CNI_ARGS has no K8S_POD_NAMESPACE (default "default");</item>
/// <item><c>labels</c>: labels every endpoint of this configuration gets (services and policies select by them);</item>
/// <item><c>dns</c> (the spec's well-known key) and <c>clusterDomain</c>: the result's DNS; with a cluster
/// domain the search list starts with &lt;namespace&gt;.svc.&lt;domain&gt;, svc.&lt;domain&gt;, &lt;domain&gt;.</item>
/// </list>
/// Runtime-provided: <c>runtimeConfig.ips</c> (the <c>ips</c> capability), <c>args.cni.ips</c>,
/// <c>args.cni.labels</c>, <c>args.cni.ports</c> (the workload's named ports: name, port,
/// protocol), <c>prevResult</c>, <c>cni.dev/valid-attachments</c>.
/// </summary>
public sealed record PluginConfig
{
    public const string DefaultSocket = "/run/controlplane/agent.sock";

    public required string CniVersion { get; init; }

    public string Name { get; init; } = "";

    public string Network { get; init; } = "";

    public string AgentSocket { get; init; } = DefaultSocket;

    public string Namespace { get; init; } = "default";

    public IReadOnlyDictionary<string, string> Labels { get; init; } = new Dictionary<string, string>();

    public string ClusterDomain { get; init; } = "";

    public JsonObject? Dns { get; init; }

    /// <summary>Requested addresses from the ips capability or args.cni.ips (null: none given there).</summary>
    public IReadOnlyList<string>? Ips { get; init; }

    /// <summary>The workload's named ports from args.cni.ports (services' named target ports and policies' named ports resolve to them).</summary>
    public IReadOnlyList<(string Name, uint Port, string Protocol)> Ports { get; init; } = [];

    public JsonObject? PrevResult { get; init; }

    /// <summary>GC's still-valid attachments (container id, interface); null when absent.</summary>
    public IReadOnlyList<(string ContainerId, string InterfaceName)>? ValidAttachments { get; init; }

    public static PluginConfig Parse(ReadOnlySpan<byte> json)
    {
        JsonObject root;
        try
        {
            // A key given twice is refused rather than one of its values picked.
            root = JsonNode.Parse(json, documentOptions: new JsonDocumentOptions { AllowDuplicateProperties = false }) as JsonObject
                ?? throw new CniException(CniCodes.DecodingFailure, "the configuration is not a JSON object");
        }
        catch (JsonException e)
        {
            throw new CniException(CniCodes.DecodingFailure, "the configuration is not valid JSON", e.Message);
        }
        var version = Text(root, "cniVersion") ?? "";
        var labels = new Dictionary<string, string>(StringComparer.Ordinal);
        if (Object(root["labels"], "labels") is { } staticLabels)
        {
            foreach (var (key, value) in staticLabels) labels[key] = Expect<string>(value, "labels." + key);
        }
        var cniArgs = Object(Object(root["args"], "args")?["cni"], "args.cni");
        if (cniArgs?["labels"] is { } argLabels)
        {
            if (argLabels is not JsonArray list) throw new CniException(CniCodes.InvalidConfig, "args.cni.labels must be a list of {key, value}");
            foreach (var label in list)
            {
                labels[Expect<string>(label?["key"], "args.cni.labels[].key")] = Expect<string>(label?["value"], "args.cni.labels[].value");
            }
        }
        return new PluginConfig
        {
            CniVersion = version,
            Name = Text(root, "name") ?? "",
            Network = Text(root, "network") ?? "",
            AgentSocket = Text(root, "agentSocket") ?? DefaultSocket,
            Namespace = Text(root, "namespace") ?? "default",
            Labels = labels,
            ClusterDomain = (Text(root, "clusterDomain") ?? "").TrimEnd('.'),
            Dns = DnsSettings(root["dns"]),
            Ips = Strings(Object(root["runtimeConfig"], "runtimeConfig")?["ips"], "runtimeConfig.ips") ?? Strings(cniArgs?["ips"], "args.cni.ips"),
            Ports = NamedPorts(cniArgs?["ports"]),
            PrevResult = Object(root["prevResult"], "prevResult"),
            ValidAttachments = root["cni.dev/valid-attachments"] switch
            {
                null => null,
                JsonArray valid => valid.Select(a => (Expect<string>(Object(a, "cni.dev/valid-attachments[]")?["containerID"], "cni.dev/valid-attachments[].containerID"), Expect<string>(a?["ifname"], "cni.dev/valid-attachments[].ifname"))).ToList(),
                _ => throw new CniException(CniCodes.InvalidConfig, "cni.dev/valid-attachments must be a list of {containerID, ifname}"),
            },
        };
    }

    /// <summary>
    /// Checks what every command but VERSION needs: a supported version, a name, the agent's
    /// socket, and the network unless <paramref name="needsNetwork"/> is false (DEL finds the
    /// endpoint by namespace, name, container and the configuration's name, GC by that name: a
    /// configuration edited since the ADD must not block the cleanup, which the spec asks plugins
    /// to complete).
    /// </summary>
    public void Validate(string command, string minimumVersion, bool needsNetwork = true)
    {
        if (!CniVersions.IsSupported(CniVersion))
            throw new CniException(CniCodes.IncompatibleVersion, $"cniVersion '{CniVersion}' is not supported", $"supported: {string.Join(", ", CniVersions.Supported)}");
        if (!CniVersions.AtLeast(CniVersion, minimumVersion))
            throw new CniException(CniCodes.IncompatibleVersion, $"{command} needs cniVersion {minimumVersion} or later", $"the configuration has {CniVersion}");
        if (Name.Length == 0) throw new CniException(CniCodes.InvalidConfig, "the configuration has no name");
        // The name is recorded on endpoints as a label value (controlplane.io/cni-network), the scope of GC.
        if (Name.Length > 63 || !char.IsAsciiLetterOrDigit(Name[0]) || !char.IsAsciiLetterOrDigit(Name[^1])
            || !Name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.'))
            throw new CniException(CniCodes.InvalidConfig, "the network name must be at most 63 characters, starting and ending alphanumeric", $"name: '{Name}'");
        if (needsNetwork && Network.Length == 0) throw new CniException(CniCodes.InvalidConfig, "the configuration names no network", "set \"network\" to the control plane's network");
        if (!Path.IsPathRooted(AgentSocket)) throw new CniException(CniCodes.InvalidConfig, "agentSocket must be an absolute path", $"agentSocket: '{AgentSocket}'");
    }

    /// <summary>
    /// The addresses asked for: the ips capability (or args.cni.ips) wins over CNI_ARGS IP, as the
    /// conventions require. A prefix length is accepted and dropped: the network decides it.
    /// </summary>
    public IReadOnlyList<string> RequestedIps(CniArgs args)
    {
        var (given, source, code) = Ips is not null ? (Ips, "runtimeConfig.ips", CniCodes.InvalidConfig)
            : args["IP"] is { } ip ? ([.. ip.Split(',')], "CNI_ARGS IP", CniCodes.InvalidEnvironment)
            : ((IReadOnlyList<string>)[], "", 0);
        var addresses = new List<string>();
        foreach (var entry in given)
        {
            var text = entry.Split('/')[0].Trim();
            if (!IPAddress.TryParse(text, out var address))
                throw new CniException(code, "a requested address is not an IP address", $"{source}: '{entry}'");
            addresses.Add(address.ToString());
        }
        return addresses;
    }

    /// <summary>args.cni.ports: [{"name": "http", "port": 8080, "protocol": "TCP"}, …]; protocol TCP (the default), UDP or SCTP.</summary>
    private static List<(string, uint, string)> NamedPorts(JsonNode? node)
    {
        if (node is null) return [];
        if (node is not JsonArray array) throw new CniException(CniCodes.InvalidConfig, "args.cni.ports must be a list of {name, port, protocol}");
        var ports = new List<(string, uint, string)>();
        for (var i = 0; i < array.Count; i++)
        {
            var at = $"args.cni.ports[{i}]";
            var protocol = array[i]?["protocol"] is { } given ? Expect<string>(given, at + ".protocol").ToUpperInvariant() : "TCP";
            if (protocol is not ("TCP" or "UDP" or "SCTP")) throw new CniException(CniCodes.InvalidConfig, $"{at}.protocol must be TCP, UDP or SCTP", $"{at}.protocol: {protocol}");
            ports.Add((Expect<string>(array[i]?["name"], at + ".name"), Expect<uint>(array[i]?["port"], at + ".port"), protocol));
        }
        return ports;
    }

    /// <summary>
    /// The spec's DNS settings, checked and copied: <c>nameservers</c>, <c>search</c> and
    /// <c>options</c> are lists of strings, <c>domain</c> a string; the result carries them as
    /// given. Other keys are not the spec's and are left out of the result (as unknown keys of the
    /// configuration are ignored).
    /// </summary>
    private static JsonObject? DnsSettings(JsonNode? node)
    {
        if (Object(node, "dns") is not { } dns) return null;
        var settings = new JsonObject();
        foreach (var (key, value) in dns)
        {
            switch (key)
            {
                case "nameservers" or "search" or "options":
                    var list = Strings(value, "dns." + key) ?? throw new CniException(CniCodes.InvalidConfig, $"dns.{key} must be a list of strings");
                    settings[key] = new JsonArray([.. list.Select(v => JsonValue.Create(v))]);
                    break;
                case "domain":
                    settings[key] = Expect<string>(value, "dns.domain");
                    break;
            }
        }
        return settings;
    }

    /// <summary>The object at <paramref name="key"/>, null when absent; anything else is an invalid configuration naming the key.</summary>
    private static JsonObject? Object(JsonNode? node, string key) => node switch
    {
        null => null,
        JsonObject value => value,
        _ => throw new CniException(CniCodes.InvalidConfig, $"{key} must be an object", $"{key}: {node.GetValueKind()}"),
    };

    private static string? Text(JsonObject root, string key) => root[key] is { } node ? Expect<string>(node, key) : null;

    private static List<string>? Strings(JsonNode? node, string key) => node switch
    {
        null => null,
        JsonArray array => array.Select((item, i) => Expect<string>(item, $"{key}[{i}]")).ToList(),
        _ => throw new CniException(CniCodes.InvalidConfig, $"{key} must be a list of strings"),
    };

    private static T Expect<T>(JsonNode? node, string key)
    {
        if (node is JsonValue value && value.TryGetValue<T>(out var result)) return result;
        throw new CniException(CniCodes.InvalidConfig, $"{key} has the wrong type", $"{key}: expected {(typeof(T) == typeof(string) ? "a string" : typeof(T).Name)}");
    }
}
