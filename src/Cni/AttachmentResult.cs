using System.Net;
using System.Net.Sockets;
using System.Text.Json.Nodes;
using ControlPlane.Contracts.V1;

namespace ControlPlane.Cni;

/// <summary>
/// The ADD result (spec section 5): the host end and the container's interface, the endpoint's
/// addresses (/32 and /128, as configured inside) with their gateways, the routes the agent made
/// (the network's prefixes, and the default route per family unless another interface holds it)
/// and the configured DNS. After another plugin (prevResult) the result is that one with ours
/// appended, its other fields kept as they were.
/// </summary>
public static class AttachmentResult
{
    public static JsonObject Build(PluginConfig config, CniInvocation invocation, EndpointIdentity identity, AttachResponse attached)
    {
        var result = config.PrevResult?.DeepClone() as JsonObject ?? [];
        result["cniVersion"] = config.CniVersion;
        var interfaces = Array(result, "interfaces");
        var ips = Array(result, "ips");
        var routes = Array(result, "routes");

        interfaces.Add((JsonNode)new JsonObject { ["name"] = attached.HostInterface, ["mac"] = attached.HostMac });
        var inside = new JsonObject { ["name"] = invocation.InterfaceName, ["mac"] = attached.Mac, ["sandbox"] = invocation.Netns };
        if (CniVersions.AtLeast(config.CniVersion, "1.1.0")) inside["mtu"] = attached.Mtu;
        interfaces.Add((JsonNode)inside);
        var index = interfaces.Count - 1;
        foreach (var text in attached.Ips)
        {
            var address = IPAddress.Parse(text);
            var v4 = address.AddressFamily == AddressFamily.InterNetwork;
            var gateway = v4 ? attached.Ipv4Gateway : attached.Ipv6Gateway;
            var ip = new JsonObject();
            if (!CniVersions.AtLeast(config.CniVersion, "1.0.0")) ip["version"] = v4 ? "4" : "6";
            ip["address"] = $"{address}/{(v4 ? 32 : 128)}";
            if (gateway.Length > 0) ip["gateway"] = gateway;
            ip["interface"] = index;
            ips.Add((JsonNode)ip);
        }
        // The routes the agent made on this interface, each through the gateway of its family.
        foreach (var destination in attached.Routes)
        {
            var v4 = IPNetwork.Parse(destination).BaseAddress.AddressFamily == AddressFamily.InterNetwork;
            var gateway = v4 ? attached.Ipv4Gateway : attached.Ipv6Gateway;
            if (gateway.Length > 0) routes.Add((JsonNode)new JsonObject { ["dst"] = destination, ["gw"] = gateway });
        }
        if (Dns(config, identity) is { } dns) result["dns"] = Merge(result["dns"] as JsonObject, dns);
        return result;
    }

    /// <summary>The configured DNS, with the cluster domain's search list for the endpoint's namespace first.</summary>
    private static JsonObject? Dns(PluginConfig config, EndpointIdentity identity)
    {
        var dns = config.Dns?.DeepClone() as JsonObject ?? [];
        if (config.ClusterDomain.Length > 0)
        {
            var search = new JsonArray($"{identity.Namespace}.svc.{config.ClusterDomain}", $"svc.{config.ClusterDomain}", config.ClusterDomain);
            if (dns["search"] is JsonArray configured)
            {
                foreach (var domain in configured) search.Add(domain?.DeepClone());
            }
            dns["search"] = search;
        }
        return dns.Count > 0 ? dns : null;
    }

    private static JsonObject Merge(JsonObject? previous, JsonObject ours)
    {
        if (previous is null) return ours;
        var merged = (JsonObject)previous.DeepClone();
        foreach (var key in (string[])["nameservers", "search", "options"])
        {
            if (ours[key] is not JsonArray add) continue;
            var list = Array(merged, key);
            foreach (var item in add)
            {
                if (!list.Any(existing => JsonNode.DeepEquals(existing, item))) list.Add(item?.DeepClone());
            }
        }
        if (merged["domain"] is null && ours["domain"] is { } domain) merged["domain"] = domain.DeepClone();
        return merged;
    }

    private static JsonArray Array(JsonObject result, string key)
    {
        if (result[key] is JsonArray array) return array;
        var created = new JsonArray();
        result[key] = created;
        return created;
    }
}
