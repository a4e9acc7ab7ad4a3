using System.Net;
using System.Security.Cryptography.X509Certificates;
using Grpc.Core;
using Microsoft.AspNetCore.Http;

namespace ControlPlane.Silo.Security;

/// <summary>The roles a client certificate can carry (its subject's OU).</summary>
public enum Role
{
    /// <summary>Everything, cluster-scoped objects included.</summary>
    Admin,
    /// <summary>Writes namespaced objects; reads everything.</summary>
    Orchestrator,
    /// <summary>Heartbeats its own node and creates or deletes endpoints on it; reads everything.</summary>
    Agent,
    /// <summary>Get, List and Watch only (DNS servers, dashboards).</summary>
    Reader,
}

/// <summary>
/// Who made a call. With mutual TLS it is the client certificate's subject: CN is the name (for
/// an agent, its node's name) and OU the role, both set by <c>netctl pki issue</c>. Without TLS
/// (the embedded single-node default) every caller is an unauthenticated admin named by its
/// peer address, so the same rate limits and audit lines apply.
/// </summary>
public sealed record Caller(string Name, Role Role, bool Authenticated)
{
    /// <summary>Key under which per-client limits count this caller.</summary>
    public string Key => Authenticated ? "cert:" + Name : "peer:" + Name;

    public static Caller Of(ServerCallContext context) => Of(context.GetHttpContext());

    public static Caller Of(HttpContext http)
    {
        if (http.Items.TryGetValue(typeof(Caller), out var known) && known is Caller caller)
        {
            return caller;
        }
        caller = http.Connection.ClientCertificate is { } certificate && FromCertificate(certificate) is { } fromCertificate
            ? fromCertificate
            : new Caller(PeerName(http), Role.Admin, Authenticated: false);
        http.Items[typeof(Caller)] = caller;
        return caller;
    }

    /// <summary>
    /// The caller a (validated) client certificate names, or null when it names no known role. A
    /// certificate names exactly one role: one with several OUs (or a multi-valued name, which
    /// could hide one) names none, rather than whichever OU comes first or last.
    /// </summary>
    public static Caller? FromCertificate(X509Certificate2 certificate)
    {
        var name = CommonName(certificate);
        var units = RoleUnits(certificate);
        return string.IsNullOrEmpty(name) || units is not [var unit] || !TryParseRole(unit, out var role) ? null : new Caller(name, role, Authenticated: true);
    }

    /// <summary>
    /// The subject's CN, the holder (a user's or a node's name); null without one. Read as the
    /// CN itself: .NET's "simple name" falls back to other attributes, such as the OU.
    /// </summary>
    public static string? CommonName(X509Certificate2 certificate)
    {
        string? name = null;
        foreach (var part in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (part.HasMultipleElements || part.GetSingleElementType().Value != "2.5.4.3") continue;
            // Two CNs name no one holder, rather than whichever comes first or last.
            if (name is not null) return null;
            name = part.GetSingleElementValue();
        }
        return name;
    }

    /// <summary>The subject's OU values, or null when a part of the subject holds several attributes.</summary>
    public static List<string>? RoleUnits(X509Certificate2 certificate)
    {
        var units = new List<string>();
        foreach (var part in certificate.SubjectName.EnumerateRelativeDistinguishedNames())
        {
            if (part.HasMultipleElements) return null;
            if (part.GetSingleElementType().Value == "2.5.4.11") units.Add(part.GetSingleElementValue() ?? string.Empty);
        }
        return units;
    }

    /// <summary>
    /// The role an OU names: exactly one of the lower-case names <c>netctl pki</c> writes. Any other
    /// spelling ("Admin", "ADMIN", " admin") names none, so a certificate is read one way only.
    /// </summary>
    public static bool TryParseRole(string? text, out Role role)
    {
        foreach (var candidate in Enum.GetValues<Role>())
        {
            if (string.Equals(text, RoleName(candidate), StringComparison.Ordinal))
            {
                role = candidate;
                return true;
            }
        }
        role = default;
        return false;
    }

    /// <summary>A role's name, as an OU and the audit log write it.</summary>
    public static string RoleName(Role role) => role switch
    {
        Role.Admin => "admin",
        Role.Orchestrator => "orchestrator",
        Role.Agent => "agent",
        Role.Reader => "reader",
        _ => throw new ArgumentOutOfRangeException(nameof(role)),
    };

    /// <summary>
    /// The caller of a call refused for its certificate, named by its peer address. It has no
    /// role: the audit log writes none for an UNAUTHENTICATED call.
    /// </summary>
    public static Caller Unauthenticated(HttpContext http) => new(PeerName(http), Role.Reader, Authenticated: false);

    /// <summary>The peer as gRPC names it (<see cref="ServerCallContext.Peer"/>): "ipv4:10.0.0.1:5000", "ipv6:[::1]:5000".</summary>
    public static string PeerOf(HttpContext http) => http.Connection.RemoteIpAddress switch
    {
        null => "unknown",
        { AddressFamily: System.Net.Sockets.AddressFamily.InterNetworkV6 } address => $"ipv6:[{address}]:{http.Connection.RemotePort}",
        var address => $"ipv4:{address}:{http.Connection.RemotePort}",
    };

    private static string PeerName(HttpContext http) => http.Connection.RemoteIpAddress is { } address
        ? (address.IsIPv4MappedToIPv6 ? address.MapToIPv4() : address).ToString()
        : "local";
}
