using System.Net.Security;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Contracts.Client;

/// <summary>
/// A client's side of the cluster's mutual TLS (<c>netctl pki</c> writes the files): the cluster
/// CA, the only root a silo's certificate is trusted under, and this client's certificate and key,
/// whose CN and OU name who calls and in which role. Used for "https://" addresses.
/// </summary>
public sealed class ClientTls
{
    private readonly X509Certificate2 _ca;
    private readonly X509Certificate2? _certificate;

    /// <param name="caPath">PEM file of the cluster CA's certificate.</param>
    /// <param name="certificatePath">PEM certificate of this client; null connects without one (the silo then answers UNAUTHENTICATED).</param>
    /// <param name="keyPath">PEM private key of that certificate.</param>
    public ClientTls(string caPath, string? certificatePath, string? keyPath)
    {
        _ca = X509CertificateLoader.LoadCertificateFromFile(caPath);
        if (certificatePath is not null)
        {
            using var pem = X509Certificate2.CreateFromPemFile(certificatePath, keyPath ?? throw new ArgumentException("a certificate needs its key", nameof(keyPath)));
            // Exported and loaded again: on Linux SslStream wants a key it can hand to OpenSSL as is.
            _certificate = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
    }

    /// <summary>The name (CN) of this client's certificate: who it calls as; null without one.</summary>
    public string? Name => _certificate?.GetNameInfo(X509NameType.SimpleName, forIssuer: false);

    /// <summary>
    /// The settings named by three options (CA, certificate, key), or null when none is set;
    /// <paramref name="problem"/> says what is missing or unreadable, naming the options by
    /// <paramref name="names"/>, one problem per line.
    /// </summary>
    public static ClientTls? FromOptions(string? ca, string? certificate, string? key, (string Ca, string Certificate, string Key) names, out string? problem)
    {
        var tls = FromSettings(ca, certificate, key, names, names, out var problems);
        problem = problems.Count == 0 ? null : string.Join("\n  ", problems.Select(p => p.Message));
        return tls;
    }

    /// <summary>
    /// The settings of three options (CA, certificate, key), or null when none is set or one is
    /// wrong: then <paramref name="problems"/> has every problem, each naming the settings it is
    /// about by <paramref name="names"/> (where each value came from) and, for one that is
    /// missing, how to give it (<paramref name="hints"/>).
    /// </summary>
    public static ClientTls? FromSettings(string? ca, string? certificate, string? key, (string Ca, string Certificate, string Key) names,
        (string Ca, string Certificate, string Key) hints, out List<TlsProblem> problems)
    {
        problems = [];
        var settings = new[] { (Value: ca, Name: names.Ca, Index: 0), (Value: certificate, Name: names.Certificate, Index: 1), (Value: key, Name: names.Key, Index: 2) };
        var set = settings.Where(s => !string.IsNullOrEmpty(s.Value)).ToList();
        if (set.Count == 0) return null;
        if (string.IsNullOrEmpty(ca))
        {
            problems.Add(new($"{string.Join(" and ", set.Select(s => s.Name))}: a client certificate needs the cluster CA the silo's certificate is checked against ({hints.Ca})",
                [.. set.Select(s => s.Index)]));
        }
        if (!string.IsNullOrEmpty(certificate) && string.IsNullOrEmpty(key)) problems.Add(new($"{names.Certificate}: a certificate needs its key ({hints.Key})", [1]));
        if (!string.IsNullOrEmpty(key) && string.IsNullOrEmpty(certificate)) problems.Add(new($"{names.Key}: a key needs its certificate ({hints.Certificate})", [2]));
        // Every missing file, each named by its setting.
        problems.AddRange(set.Where(s => !File.Exists(s.Value)).Select(s => new TlsProblem($"{s.Name}: '{s.Value}' does not exist", [s.Index])));
        if (problems.Count > 0) return null;
        try
        {
            return new ClientTls(ca!, NullIfEmpty(certificate), NullIfEmpty(key));
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            problems.Add(new($"{string.Join(", ", set.Select(s => s.Name))}: cannot read the TLS files: {e.Message}", [.. set.Select(s => s.Index)]));
            return null;
        }
    }

    /// <summary>Whether a failed call's exception (or one it wraps) is a TLS handshake that did not verify: read from the type, never the text.</summary>
    public static bool HandshakeFailed(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is System.Security.Authentication.AuthenticationException) return true;
        }
        return false;
    }

    /// <summary>
    /// Whether a failed handshake (<see cref="HandshakeFailed"/>) needs the CA setting checked: the
    /// server's certificate did not chain to the CA given, or the reason is unknown; not when it
    /// was refused for its host name or its dates, which the refusal says.
    /// </summary>
    public static bool CaToCheck(Exception? error) => RefusalIn(error) is { } refused ? refused.UntrustedIssuer : HandshakeFailed(error);

    /// <summary>This client's refusal of the server's certificate among <paramref name="error"/> and the exceptions it wraps, if any.</summary>
    public static ServerCertificateRefusedException? RefusalIn(Exception? error)
    {
        for (var e = error; e is not null; e = e.InnerException)
        {
            if (e is ServerCertificateRefusedException refused) return refused;
        }
        return null;
    }

    /// <summary>The client's certificate, if it has one.</summary>
    public X509Certificate2? Certificate => _certificate;

    /// <summary>Configures a handler: the silo's certificate must chain to the cluster CA; ours goes along.</summary>
    public void Apply(SocketsHttpHandler handler)
    {
        handler.SslOptions = new SslClientAuthenticationOptions
        {
            ApplicationProtocols = [SslApplicationProtocol.Http2],
            ClientCertificates = _certificate is null ? null : [_certificate],
            LocalCertificateSelectionCallback = _certificate is null ? null : (_, _, _, _, _) => _certificate,
            RemoteCertificateValidationCallback = (sender, certificate, _, errors) => Trust(certificate as X509Certificate2, errors, (sender as SslStream)?.TargetHostName),
        };
    }

    /// <summary>True for a certificate issued for the host by the cluster CA; else throws <see cref="ServerCertificateRefusedException"/> saying why.</summary>
    private bool Trust(X509Certificate2? server, SslPolicyErrors errors, string? host)
    {
        if (server is null) throw new ServerCertificateRefusedException("the server presented no certificate", untrustedIssuer: false);
        // A name mismatch is the host's concern, checked as usual; the chain is checked here against our CA only.
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0)
        {
            var names = server.Extensions.OfType<X509SubjectAlternativeNameExtension>()
                .SelectMany(e => e.EnumerateDnsNames().Concat(e.EnumerateIPAddresses().Select(a => a.ToString()))).ToList();
            throw new ServerCertificateRefusedException(
                $"the server's certificate is not issued for '{host}' (it names {(names.Count == 0 ? "no host" : string.Join(", ", names))})", untrustedIssuer: false);
        }
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        if (chain.Build(server)) return true;
        throw Refusal(server, chain);
    }

    /// <summary>Why <paramref name="server"/>'s <paramref name="chain"/> did not verify against the cluster CA.</summary>
    private ServerCertificateRefusedException Refusal(X509Certificate2 server, X509Chain chain)
    {
        var flags = chain.ChainStatus.Aggregate(X509ChainStatusFlags.NoError, (all, s) => all | s.Status);
        var certificate = $"the server's certificate ('{server.Subject}'";
        if ((flags & (X509ChainStatusFlags.UntrustedRoot | X509ChainStatusFlags.PartialChain)) != 0)
        {
            return new(server.Issuer == _ca.Subject
                ? $"{certificate}) is signed by another CA than the cluster CA given, under the same name ('{_ca.Subject}')"
                : $"{certificate}, issued by '{server.Issuer}') is not issued by the cluster CA given ('{_ca.Subject}')", untrustedIssuer: true);
        }
        if ((flags & X509ChainStatusFlags.NotTimeValid) != 0 && CertificateValidity.Problem(server, DateTime.UtcNow) is { } invalid)
            return new($"{certificate}) {invalid}", untrustedIssuer: false);
        return new($"{certificate}) does not verify: {string.Join("; ", chain.ChainStatus.Select(s => s.StatusInformation.Trim()))}", untrustedIssuer: false);
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}

/// <summary>One thing wrong with TLS settings: what to say, and which settings it is about (0 CA, 1 certificate, 2 key).</summary>
public sealed record TlsProblem(string Message, int[] About);
