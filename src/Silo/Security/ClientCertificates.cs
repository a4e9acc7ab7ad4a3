using ControlPlane.Contracts.Client;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using Grpc.AspNetCore.Server;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Connections.Features;
using Microsoft.Extensions.Logging;

namespace ControlPlane.Silo.Security;

/// <summary>
/// Checks the client certificate of every request that came over TLS (the API port with
/// "Tls:*" set) against the cluster CA. The handshake accepts any certificate, or none, so that a
/// refused client gets a gRPC status it can read rather than a broken connection: UNAUTHENTICATED
/// with the reason. A certificate that passes names the <see cref="Caller"/>. Requests not over TLS
/// (the unix socket, the health port) are not checked here.
/// The chain is built once per certificate object, and Kestrel hands every request of a
/// connection the same object, so a connection pays for it once; the validity period is checked
/// on every request, so a certificate that expires while its connection is open is refused.
/// A refused write (see <see cref="ApiMethod"/>) is recorded in the audit log when there is one,
/// with the reason and the peer: attempts to change the cluster without a valid certificate are
/// what an auditor looks for first.
/// </summary>
public sealed partial class ClientCertificates(X509Certificate2 ca, TimeProvider time, AuditLog? audit = null, ILogger<ClientCertificates>? logger = null)
{
    private const string ClientAuthentication = "1.3.6.1.5.5.7.3.2";

    /// <summary>A certificate that chained: its caller, and when it is valid.</summary>
    private sealed record Verdict(Caller Caller, DateTime NotBefore, DateTime NotAfter);

    private readonly System.Runtime.CompilerServices.ConditionalWeakTable<X509Certificate2, Verdict> _verdicts = new();

    /// <summary>The caller <paramref name="certificate"/> names, or null with the reason it is refused.</summary>
    public Caller? Check(X509Certificate2? certificate, out string? problem)
    {
        if (certificate is not null && _verdicts.TryGetValue(certificate, out var known))
        {
            var now = time.GetUtcNow().UtcDateTime;
            if (now >= known.NotBefore && now <= known.NotAfter)
            {
                problem = null;
                return known.Caller;
            }
        }
        // Not seen yet, or out of its validity period (Problem says when): the full check.
        problem = Problem(certificate);
        if (problem is not null) return null;
        var caller = Caller.FromCertificate(certificate!)!;
        _verdicts.AddOrUpdate(certificate!, new Verdict(caller, certificate!.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime()));
        return caller;
    }

    /// <summary>Why <paramref name="certificate"/> cannot name a caller, or null when it is one of the cluster's.</summary>
    public string? Problem(X509Certificate2? certificate)
    {
        if (certificate is null) return "no client certificate (mutual TLS: present one issued by netctl pki issue)";
        var now = time.GetUtcNow().UtcDateTime;
        if (CertificateValidity.Problem(certificate, now) is { } invalid) return $"certificate '{certificate.Subject}' {invalid}";
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        chain.ChainPolicy.VerificationTime = now;
        chain.ChainPolicy.ApplicationPolicy.Add(new System.Security.Cryptography.Oid(ClientAuthentication));
        if (!chain.Build(certificate))
        {
            var statuses = chain.ChainStatus.Select(s => s.Status).ToHashSet();
            return statuses.Contains(X509ChainStatusFlags.NotValidForUsage)
                    && !statuses.Overlaps([X509ChainStatusFlags.UntrustedRoot, X509ChainStatusFlags.PartialChain])
                ? $"certificate '{certificate.Subject}' is not a client certificate (no clientAuth usage)"
                : $"certificate '{certificate.Subject}' is not issued by the cluster CA";
        }
        // RFC 5280 4.2.1.3: a key whose usage is stated and lacks digitalSignature may not sign,
        // and a TLS client proves it holds its key by signing.
        if (certificate.Extensions.OfType<X509KeyUsageExtension>().FirstOrDefault() is { } usage && !usage.KeyUsages.HasFlag(X509KeyUsageFlags.DigitalSignature))
            return $"certificate '{certificate.Subject}' is not a client certificate (its key usage lacks digitalSignature)";
        // A CA's certificate issues identities; it is not one (the cluster CA's own, or an
        // intermediate the cluster CA signed, would otherwise act with the role it names).
        if (certificate.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is { CertificateAuthority: true })
            return $"certificate '{certificate.Subject}' is a CA certificate (basicConstraints CA:TRUE); a client presents a leaf certificate issued by netctl pki issue";
        var units = Caller.RoleUnits(certificate);
        if (units is null || units.Count > 1)
            return $"certificate '{certificate.Subject}' names {(units is null ? "its subject ambiguously (a multi-valued name)" : $"{units.Count} roles")}; a certificate carries exactly one OU, its role";
        if (string.IsNullOrEmpty(Caller.CommonName(certificate)))
            return $"certificate '{certificate.Subject}' names no single holder: its one CN is the user's or node's name";
        if (Caller.FromCertificate(certificate) is null)
            return $"certificate '{certificate.Subject}' names no role (OU admin, orchestrator, agent or reader)";
        return null;
    }

    /// <summary>The middleware: refuses a request over TLS without a cluster certificate; otherwise names its caller.</summary>
    public async Task InvokeAsync(HttpContext context, RequestDelegate next)
    {
        if (context.Features.Get<ITlsHandshakeFeature>() is null)
        {
            await next(context).ConfigureAwait(false);
            return;
        }
        var certificate = context.Connection.ClientCertificate
            ?? await context.Connection.GetClientCertificateAsync(context.RequestAborted).ConfigureAwait(false);
        if (Check(certificate, out var problem) is not { } caller)
        {
            Audit(context, problem!);
            await RefuseAsync(context, problem!).ConfigureAwait(false);
            return;
        }
        context.Items[typeof(Caller)] = caller;
        await next(context).ConfigureAwait(false);
    }

    /// <summary>
    /// Records a refused write. Only methods the API serves are named (routing matched them
    /// before this middleware), so a client cannot make up method names in the log.
    /// </summary>
    private void Audit(HttpContext context, string problem)
    {
        if (audit is null || context.GetEndpoint()?.Metadata.GetMetadata<GrpcMethodMetadata>() is not { } grpc) return;
        var method = ApiMethod.Of(grpc.Method.FullName);
        if (!method.IsWrite) return;
        try
        {
            audit.Append(new AuditEntry(time.GetUtcNow(), Caller.Unauthenticated(context), Caller.PeerOf(context), method.Name, method.Kind,
                null, null, Grpc.Core.StatusCode.Unauthenticated, null, problem));
        }
        catch (IOException e)
        {
            // Nothing was written; the caller hears UNAUTHENTICATED all the same, the operator this.
            if (logger is not null) Log.AppendFailed(logger, e, audit.Path);
        }
    }

    private static partial class Log
    {
        [LoggerMessage(EventId = 1, Level = LogLevel.Error, Message = "could not append a refused call to the audit log {Path}")]
        public static partial void AppendFailed(ILogger logger, Exception exception, string path);
    }

    /// <summary>UNAUTHENTICATED as a trailers-only gRPC response (401 for anything that is not gRPC).</summary>
    private static Task RefuseAsync(HttpContext context, string problem) =>
        Api.TrailersOnly.RefuseAsync(context, Grpc.Core.StatusCode.Unauthenticated, StatusCodes.Status401Unauthorized, problem);
}
