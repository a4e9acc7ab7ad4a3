using System.Security.Cryptography;
using System.Text;

namespace ControlPlane.Contracts.Attachments;

/// <summary>
/// The name of an endpoint's veth on its node's side: the node agent makes it, the CNI plugin
/// reports and checks it. Linux allows 15 characters, so the endpoint's key is hashed.
/// </summary>
public static class HostInterfaces
{
    public const string Prefix = "cpe";

    /// <summary>cpe + 12 hex digits of a hash of the endpoint's key (namespace/name).</summary>
    public static string Of(string endpointKey) =>
        Prefix + Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(endpointKey)))[..12].ToLowerInvariant();
}
