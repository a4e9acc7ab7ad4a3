using System.Buffers.Text;
using System.Text;
using ControlPlane.Storage.Errors;

namespace ControlPlane.Silo.Api;

/// <summary>
/// A List's next_page_token: the last key of the page, bound to the request it continues (the
/// kind and the namespace filter), and the resume token of the listing's first page. As API
/// Improvement Proposal 158 asks, a token sent with other parameters is INVALID_ARGUMENT rather
/// than a page of another listing; only page_size may change. Each page is its own snapshot, so
/// every page answers with the first page's resume token: a watch from it gets every change made
/// while the client paged (some repeat what later pages showed), where a later page's token would
/// skip the changes to objects on the pages before it.
/// </summary>
public static class PageToken
{
    private const char Separator = '\0';
    private const string Version = "p2";

    public static string Encode(string kind, string ns, string lastKey, string resumeToken) =>
        Base64Url.EncodeToString(Encoding.UTF8.GetBytes(string.Join(Separator, Version, kind, ns, lastKey, resumeToken)));

    /// <summary>The key after which the page starts and the first page's resume token; (null, null) for the first page.</summary>
    public static (string? AfterKey, string? ResumeToken) Decode(string token, string kind, string ns)
    {
        if (token.Length == 0) return (null, null);
        var parts = ControlPlane.Contracts.Client.WatchPosition.Bytes(token) is { } bytes ? Encoding.UTF8.GetString(bytes).Split(Separator) : throw NotIssued();
        if (parts is not [Version, var issuedKind, var issuedNamespace, var lastKey, var resumeToken]) throw NotIssued();
        if (issuedKind != kind) throw ControlPlaneException.Invalid("page_token", $"continues a list of {ControlPlaneException.Quote(issuedKind)}, not of {kind}");
        if (issuedNamespace != ns)
        {
            throw ControlPlaneException.Invalid("page_token",
                $"continues a list of {(issuedNamespace.Length == 0 ? "all namespaces" : $"namespace {ControlPlaneException.Quote(issuedNamespace)}")}; send the same namespace, or list again without a token");
        }
        return (lastKey, resumeToken);
    }

    private static ControlPlaneException NotIssued() => ControlPlaneException.Invalid("page_token", "is not a token this server issued");
}
