using System.Security.Cryptography;
using System.Text;

namespace ControlPlane.Contracts.Attachments;

/// <summary>
/// How an endpoint records the container it was attached for (the agent writes these labels when
/// an attach names a container; the CNI plugin reads them back for CHECK and GC). Label values
/// are at most 63 characters and container ids are often longer (64 hex digits), so the exact
/// identity of an attachment, (container id, interface), is a digest; the container id itself is
/// kept for people, cut to fit.
/// </summary>
public static class AttachmentLabels
{
    /// <summary>The container id, cut to a valid label value (for people and selectors; may be shortened).</summary>
    public const string ContainerId = "controlplane.io/container-id";

    /// <summary>The attachment's exact identity: <see cref="Key"/> of container id and interface.</summary>
    public const string Attachment = "controlplane.io/attachment";

    /// <summary>The CNI network configuration (its "name") the attachment was made through; the scope of CNI GC.</summary>
    public const string CniNetwork = "controlplane.io/cni-network";

    private const int MaxValue = 63;

    /// <summary>40 hex digits of SHA-256 over "container/interface" ('/' occurs in neither).</summary>
    public static string Key(string containerId, string interfaceName) =>
        Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(containerId + "/" + interfaceName)))[..40].ToLowerInvariant();

    /// <summary>
    /// The container id as a label value: its first 63 characters of [A-Za-z0-9_.-], ending in an
    /// alphanumeric; empty when nothing of it qualifies.
    /// </summary>
    public static string ContainerIdValue(string containerId)
    {
        var length = 0;
        while (length < containerId.Length && length < MaxValue && IsValueChar(containerId[length])) length++;
        while (length > 0 && !char.IsAsciiLetterOrDigit(containerId[length - 1])) length--;
        return char.IsAsciiLetterOrDigit(containerId.FirstOrDefault()) ? containerId[..length] : "";
    }

    /// <summary>The labels an attach for <paramref name="containerId"/> on <paramref name="interfaceName"/> records.</summary>
    public static IEnumerable<KeyValuePair<string, string>> For(string containerId, string interfaceName)
    {
        yield return new(Attachment, Key(containerId, interfaceName));
        if (ContainerIdValue(containerId) is { Length: > 0 } value) yield return new(ContainerId, value);
    }

    private static bool IsValueChar(char c) => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.';
}
