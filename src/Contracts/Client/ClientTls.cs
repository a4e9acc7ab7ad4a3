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

    /// <summary>
    /// The settings named by three options (CA, certificate, key), or null when none is set;
    /// <paramref name="problem"/> says what is missing or unreadable, naming the options by <paramref name="names"/>.
    /// </summary>
    public static ClientTls? FromOptions(string? ca, string? certificate, string? key, (string Ca, string Certificate, string Key) names, out string? problem)
    {
        problem = null;
        if (string.IsNullOrEmpty(ca) && string.IsNullOrEmpty(certificate) && string.IsNullOrEmpty(key)) return null;
        if (string.IsNullOrEmpty(ca)) problem = $"{names.Ca} is needed with a certificate (the cluster CA the silo's certificate is checked against)";
        else if (string.IsNullOrEmpty(certificate) != string.IsNullOrEmpty(key)) problem = $"{names.Certificate} and {names.Key} go together";
        else
        {
            var missing = new[] { (names.Ca, ca), (names.Certificate, certificate), (names.Key, key) }
                .Where(f => !string.IsNullOrEmpty(f.Item2) && !File.Exists(f.Item2)).Select(f => $"{f.Item1}: '{f.Item2}' does not exist").ToList();
            if (missing.Count > 0)
            {
                // Every missing file, each named by its setting (one line each).
                problem = string.Join("\n  ", missing);
                return null;
            }
            try
            {
                return new ClientTls(ca, NullIfEmpty(certificate), NullIfEmpty(key));
            }
            catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
            {
                problem = $"cannot read the TLS files: {e.Message}";
            }
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
            RemoteCertificateValidationCallback = (_, certificate, _, errors) => certificate is X509Certificate2 server && Trusted(server, errors),
        };
    }

    private bool Trusted(X509Certificate2 server, SslPolicyErrors errors)
    {
        // A name mismatch is the host's concern, checked as usual; the chain is checked here against our CA only.
        if ((errors & SslPolicyErrors.RemoteCertificateNameMismatch) != 0) return false;
        using var chain = new X509Chain();
        chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
        chain.ChainPolicy.CustomTrustStore.Add(_ca);
        chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
        return chain.Build(server);
    }

    private static string? NullIfEmpty(string? s) => string.IsNullOrEmpty(s) ? null : s;
}
