using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;

namespace ControlPlane.Cni.Tests;

/// <summary>Runs cnitool, or the plugin itself the way a runtime would, on a host of a <see cref="CniCluster"/>.</summary>
internal static class Runtimes
{
    /// <summary>Where scripts/build-cnitool.sh installs cnitool ($CNITOOL overrides).</summary>
    public static string Cnitool
    {
        get
        {
            var path = Environment.GetEnvironmentVariable("CNITOOL") is { Length: > 0 } given ? given : "/usr/local/bin/cnitool";
            return File.Exists(path) ? path : throw new InvalidOperationException($"cnitool is not at {path}: run scripts/build-cnitool.sh");
        }
    }

    public sealed record Outcome(int Code, string Output, string Error)
    {
        public JsonObject Json => JsonNode.Parse(Output) as JsonObject ?? throw new InvalidOperationException($"not a JSON object: {Output}");

        public override string ToString() => $"exit {Code}\nstdout: {Output}\nstderr: {Error}";
    }

    /// <summary>cnitool VERB NET NETNS inside host n's namespace, with the bed's configuration and plugin directories.</summary>
    public static Outcome Cni(CniCluster cluster, int host, string verb, string network, string netns,
        string? capabilityArgs = null, string? cniArgs = null, string interfaceName = "eth0")
    {
        var environment = new Dictionary<string, string>
        {
            ["NETCONFPATH"] = cluster.ConfigDirectory,
            ["CNI_PATH"] = cluster.PluginDirectory,
            ["CNI_IFNAME"] = interfaceName,
        };
        if (capabilityArgs is not null) environment["CAP_ARGS"] = capabilityArgs;
        if (cniArgs is not null) environment["CNI_ARGS"] = cniArgs;
        var (code, output, error) = Shell.Run(environment, null, cluster.Private("ip", "netns", "exec", cluster.Host(host), Cnitool, verb, network, netns));
        return new Outcome(code, output, error);
    }

    /// <summary>The container id cnitool gives a namespace path: "cnitool-" and 20 hex digits of its SHA-512.</summary>
    public static string CnitoolContainerId(string netnsPath) =>
        "cnitool-" + Convert.ToHexString(SHA512.HashData(Encoding.UTF8.GetBytes(netnsPath)))[..20].ToLowerInvariant();

    /// <summary>The plugin run directly in host n's namespace: CNI_COMMAND and the other variables, the configuration on stdin.</summary>
    public static Outcome Plugin(CniCluster cluster, int host, string command, JsonObject config, string containerId = "", string netns = "",
        string interfaceName = "eth0", string cniArgs = "")
    {
        var environment = new Dictionary<string, string>
        {
            ["CNI_COMMAND"] = command,
            ["CNI_CONTAINERID"] = containerId,
            ["CNI_NETNS"] = netns,
            ["CNI_IFNAME"] = interfaceName,
            ["CNI_ARGS"] = cniArgs,
            ["CNI_PATH"] = cluster.PluginDirectory,
        };
        var (code, output, error) = Shell.Run(environment, config.ToJsonString(), "ip", "netns", "exec", cluster.Host(host), Path.Combine(cluster.PluginDirectory, "controlplane"));
        return new Outcome(code, output, error);
    }

    /// <summary>The plugin configuration a runtime derives from a conflist written by <see cref="CniCluster.WriteConfList"/>.</summary>
    public static JsonObject PluginConfig(CniCluster cluster, string confList, string cniVersion = "1.1.0")
    {
        var list = JsonNode.Parse(File.ReadAllText(Path.Combine(cluster.ConfigDirectory, confList + ".conflist")))!.AsObject();
        var plugin = list["plugins"]![0]!.DeepClone().AsObject();
        plugin.Remove("capabilities");
        plugin["cniVersion"] = cniVersion;
        plugin["name"] = list["name"]!.GetValue<string>();
        return plugin;
    }
}
