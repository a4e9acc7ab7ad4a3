namespace ControlPlane.Cni;

/// <summary>
/// CNI_ARGS: "KEY=VALUE;KEY=VALUE". The keys the plugin reads are IP (a requested address,
/// optionally with a prefix length) and Kubernetes' K8S_POD_NAMESPACE and K8S_POD_NAME. Other
/// keys are ignored, whether or not IgnoreUnknown is given: runtimes pass many. One of the keys
/// read, given twice, is an error (4).
/// </summary>
public sealed record CniArgs(IReadOnlyDictionary<string, string> Values)
{
    public static readonly CniArgs Empty = new(new Dictionary<string, string>());

    /// <summary>The keys the plugin reads.</summary>
    private static readonly string[] Read = ["IP", "K8S_POD_NAMESPACE", "K8S_POD_NAME"];

    public string? this[string key] => Values.TryGetValue(key, out var value) && value.Length > 0 ? value : null;

    public static CniArgs Parse(string? text)
    {
        var values = new Dictionary<string, string>(StringComparer.Ordinal);
        if (string.IsNullOrEmpty(text)) return new(values);
        foreach (var pair in text.Split(';', StringSplitOptions.RemoveEmptyEntries))
        {
            var equals = pair.IndexOf('=', StringComparison.Ordinal);
            if (equals <= 0)
                throw new CniException(CniCodes.InvalidEnvironment, "CNI_ARGS is malformed", $"CNI_ARGS: '{pair}' is not KEY=VALUE");
            var key = pair[..equals];
            // A key the plugin reads, given twice, is ambiguous: refused rather than one picked.
            if (!values.TryAdd(key, pair[(equals + 1)..]) && Read.Contains(key))
                throw new CniException(CniCodes.InvalidEnvironment, "CNI_ARGS is malformed", $"CNI_ARGS gives {key} twice");
        }
        return new(values);
    }
}
