using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.Hosting;
using System.Security.Cryptography.X509Certificates;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Core;
using Microsoft.AspNetCore.Server.Kestrel.Https;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Silo.Security;

/// <summary>
/// Mutual TLS on the API port ("Tls:Certificate", "Tls:Key": the silo's PEM certificate and key;
/// "Tls:ClientCa": the cluster CA that client certificates must chain to; all three or none). Off
/// by default. The handshake asks for a client certificate but accepts any, or none;
/// <see cref="ClientCertificates"/> then answers UNAUTHENTICATED with the reason, and
/// <see cref="AuthorizationInterceptor"/> checks the caller's role. The unix socket (a local admin
/// channel) and the health port stay plain.
/// </summary>
public sealed class SiloTls
{
    private SiloTls(X509Certificate2 serverCertificate, X509Certificate2 clientCa)
    {
        ServerCertificate = serverCertificate;
        ClientCa = clientCa;
    }

    public X509Certificate2 ServerCertificate { get; }

    public X509Certificate2 ClientCa { get; }

    private const string ServerAuthentication = "1.3.6.1.5.5.7.3.1";

    /// <summary>The settings of the "Tls" section, or null when TLS is off.</summary>
    public static SiloTls? From(IConfiguration configuration)
    {
        var options = configuration.GetSection("Tls").Read<TlsOptions>(everyKey: true);
        string[] files = [options.Certificate, options.Key, options.ClientCa];
        if (files.All(string.IsNullOrEmpty)) return null;
        var errors = new List<string>();
        if (files.Any(string.IsNullOrEmpty)) errors.Add("Tls:Certificate, Tls:Key and Tls:ClientCa go together (mutual TLS on the API port)");
        string[] names = ["Tls:Certificate", "Tls:Key", "Tls:ClientCa"];
        errors.AddRange(files.Select((f, i) => (f, i)).Where(p => !string.IsNullOrEmpty(p.f) && !File.Exists(p.f)).Select(p => $"{names[p.i]}: '{p.f}' does not exist"));
        if (errors.Count > 0) throw new InvalidConfigurationException("Invalid configuration:\n  " + string.Join("\n  ", errors));
        X509Certificate2 server, clientCa;
        try
        {
            using var pem = X509Certificate2.CreateFromPemFile(files[0], files[1]);
            // Exported and loaded again: SslStream on Linux wants a key it can hand to OpenSSL as is.
            server = X509CertificateLoader.LoadPkcs12(pem.Export(X509ContentType.Pkcs12), null);
        }
        catch (Exception e) when (e is System.Security.Cryptography.CryptographicException or ArgumentException)
        {
            throw new InvalidConfigurationException($"Invalid configuration:\n  Tls:Certificate, Tls:Key: cannot use '{files[0]}' with '{files[1]}': {e.Message}");
        }
        try
        {
            clientCa = X509CertificateLoader.LoadCertificateFromFile(files[2]);
            // The first of a bundle would be trusted and the rest ignored, without a word.
            var bundle = new X509Certificate2Collection();
            bundle.ImportFromPemFile(files[2]);
            if (bundle.Count > 1)
            {
                throw new InvalidConfigurationException($"Invalid configuration:\n  Tls:ClientCa: '{files[2]}' holds {bundle.Count} certificates; give one, the cluster CA (ca.crt of netctl pki init)");
            }
        }
        catch (System.Security.Cryptography.CryptographicException e)
        {
            throw new InvalidConfigurationException($"Invalid configuration:\n  Tls:ClientCa: cannot read '{files[2]}': {e.Message}");
        }
        if (Unusable(server, clientCa, DateTime.UtcNow) is { Count: > 0 } unusable)
        {
            throw new InvalidConfigurationException("Invalid configuration:\n  " + string.Join("\n  ", unusable));
        }
        return new SiloTls(server, clientCa);
    }

    /// <summary>
    /// What makes the files unusable at <paramref name="now"/>: a certificate outside its validity
    /// (every client would refuse the silo), a client CA that is no CA (no client certificate could
    /// chain to it).
    /// </summary>
    internal static List<string> Unusable(X509Certificate2 server, X509Certificate2 clientCa, DateTime now)
    {
        var problems = new List<string>();
        foreach (var (name, certificate) in new[] { ("Tls:Certificate", server), ("Tls:ClientCa", clientCa) })
        {
            if (CertificateValidity.Problem(certificate, now) is { } invalid) problems.Add($"{name}: the certificate ('{certificate.Subject}') {invalid}");
        }
        // RFC 5280 4.2.1.12: a certificate whose extended key usage is stated serves only those uses.
        if (server.Extensions.OfType<X509EnhancedKeyUsageExtension>().FirstOrDefault() is { } usage
            && !usage.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>().Any(o => o.Value == ServerAuthentication))
        {
            problems.Add($"Tls:Certificate: '{server.Subject}' is not a server certificate (no serverAuth usage): give the silo's (netctl pki issue --role silo)");
        }
        if (clientCa.Extensions.OfType<X509BasicConstraintsExtension>().FirstOrDefault() is not { CertificateAuthority: true })
        {
            problems.Add($"Tls:ClientCa: '{clientCa.Subject}' is not a CA certificate (no CA basic constraint): give the cluster CA (ca.crt of netctl pki init)");
        }
        return problems;
    }

    /// <summary>
    /// Makes <paramref name="listen"/> an HTTPS endpoint asking for client certificates: HTTP/2
    /// for gRPC (negotiated by ALPN), and HTTP/1.1 for a client that offers no ALPN (curl of
    /// /healthz, a TLS probe), which an HTTP/2-only endpoint logged as an error per connection.
    /// </summary>
    public void Listen(ListenOptions listen)
    {
        listen.Protocols = HttpProtocols.Http1AndHttp2;
        listen.UseHttps(new HttpsConnectionAdapterOptions
        {
            ServerCertificate = ServerCertificate,
            ClientCertificateMode = ClientCertificateMode.AllowCertificate,
            // Checked per request by ClientCertificates, so the refusal is a status the client can read.
            ClientCertificateValidation = (_, _, _) => true,
        });
    }

    /// <summary>Registers the client-certificate check (when TLS is on).</summary>
    public static void AddTo(IServiceCollection services, SiloTls? tls)
    {
        if (tls is null) return;
        services.AddSingleton(tls);
        services.AddSingleton(s => new ClientCertificates(tls.ClientCa, TimeProvider.System, s.GetService<AuditLog>(), s.GetService<Microsoft.Extensions.Logging.ILogger<ClientCertificates>>()));
    }

    /// <summary>Runs the client-certificate check before every endpoint (when TLS is on).</summary>
    public static void Use(WebApplication app)
    {
        if (app.Services.GetService<ClientCertificates>() is { } certificates)
        {
            app.Use((context, next) => certificates.InvokeAsync(context, next));
        }
    }
}
