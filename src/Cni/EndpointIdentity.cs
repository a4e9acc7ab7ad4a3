using System.Security.Cryptography;
using System.Text;
using ControlPlane.Contracts.Attachments;

namespace ControlPlane.Cni;

/// <summary>
/// Which endpoint a container's attachment is. An attachment is (CNI_CONTAINERID, CNI_IFNAME)
/// (the spec's key); the endpoint is named for people:
/// <list type="bullet">
/// <item>namespace: K8S_POD_NAMESPACE from CNI_ARGS, else the configuration's <c>namespace</c>;</item>
/// <item>name: K8S_POD_NAME from CNI_ARGS (podman passes the container's name there), else the
/// container id; with "-&lt;ifname&gt;" appended for any interface but eth0. A result that is not a
/// DNS-1123 subdomain with labels of at most 63 characters (upper case, '_', a 64-digit id) is
/// lowered, cleaned, cut to 54 characters and suffixed with 8 hex digits of a digest of the original,
/// so distinct originals keep distinct names.</item>
/// </list>
/// The endpoint records the container (<see cref="AttachmentLabels"/>), so a name reused by
/// another container is refused rather than taken over, DEL touches only its own container's
/// endpoint, and GC finds the endpoints of containers that are gone.
/// </summary>
public sealed record EndpointIdentity(string Namespace, string Name, string ContainerId, string InterfaceName)
{
    private const string DefaultInterface = "eth0";

    public string AttachmentKey => AttachmentLabels.Key(ContainerId, InterfaceName);

    public static EndpointIdentity Of(CniInvocation invocation, PluginConfig config)
    {
        var ns = invocation.Args["K8S_POD_NAMESPACE"] ?? config.Namespace;
        var baseName = invocation.Args["K8S_POD_NAME"] ?? invocation.ContainerId;
        var name = invocation.InterfaceName == DefaultInterface ? baseName : $"{baseName}-{invocation.InterfaceName}";
        return new EndpointIdentity(ns, EndpointName(name), invocation.ContainerId, invocation.InterfaceName);
    }

    /// <summary><paramref name="wanted"/> when it is a valid endpoint name, else a clean name with a digest suffix.</summary>
    public static string EndpointName(string wanted)
    {
        if (Contracts.DnsNames.IsSubdomain(wanted)) return wanted;
        var clean = new StringBuilder(wanted.Length);
        foreach (var c in wanted.ToLowerInvariant())
        {
            clean.Append(char.IsAsciiLetterOrDigit(c) || c is '-' or '.' ? c : '-');
        }
        var prefix = clean.ToString(0, Math.Min(clean.Length, 54)).Trim('-', '.');
        while (prefix.Contains("..", StringComparison.Ordinal)) prefix = prefix.Replace("..", ".", StringComparison.Ordinal);
        prefix = string.Join('.', prefix.Split('.').Select(label => label.Trim('-')).Where(label => label.Length > 0));
        var digest = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(wanted)))[..8].ToLowerInvariant();
        return prefix.Length == 0 ? "c-" + digest : $"{prefix}-{digest}";
    }
}
