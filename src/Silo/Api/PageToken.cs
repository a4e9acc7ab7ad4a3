using System.Buffers.Text;
using System.Text;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Silo.Api;

/// <summary>
/// A List's next_page_token: the last key of the page, bound to the request it continues (the
/// kind and the namespace filter). As API Improvement Proposal 158 asks, a token sent with other
/// parameters is INVALID_ARGUMENT rather than a page of another listing; only page_size may change.
/// </summary>
public static class PageToken
{
    private const char Separator = '\0';
    private const string Version = "p1";

    public static string Encode(string kind, string ns, string lastKey) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(string.Join(Separator, Version, kind, ns, lastKey)));

    /// <summary>The key after which the page starts, or null for the first page.</summary>
    public static string? Decode(string token, string kind, string ns)
    {
        if (token.Length == 0) return null;
        string[] parts;
        try
        {
            parts = Encoding.UTF8.GetString(Base64Url.DecodeFromChars(token)).Split(Separator);
        }
        catch (FormatException)
        {
            throw NotIssued();
        }
        if (parts is not [Version, var issuedKind, var issuedNamespace, var lastKey]) throw NotIssued();
        if (issuedKind != kind) throw ControlPlaneException.Invalid("page_token", $"continues a list of {issuedKind}, not of {kind}");
        if (issuedNamespace != ns)
        {
            throw ControlPlaneException.Invalid("page_token",
                $"continues a list of {(issuedNamespace.Length == 0 ? "all namespaces" : $"namespace {ControlPlaneException.Quote(issuedNamespace)}")}; send the same namespace, or list again without a token");
        }
        return lastKey;
    }

    private static ControlPlaneException NotIssued() => ControlPlaneException.Invalid("page_token", "is not a token this server issued");
}
