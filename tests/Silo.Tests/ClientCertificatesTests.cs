using System.Security.Cryptography.X509Certificates;
using ControlPlane.Silo.Security;
using ControlPlane.Tests.Shared;
using Microsoft.Extensions.Time.Testing;

namespace ControlPlane.Silo.Tests;

/// <summary>
/// The client-certificate check remembers a certificate that chains (one chain build per
/// connection), but not past the certificate's validity: a connection held open while its
/// certificate expires is refused from then on.
/// </summary>
public sealed class ClientCertificatesTests
{
    [Fact]
    public void RememberedCertificate_IsRefusedOnceItExpires_AndNamesItsCallerUntilThen()
    {
        using var pki = ClusterPki.Create();
        pki.Ca.Issue("short-lived", "orchestrator", days: 1);
        var certificate = X509CertificateLoader.LoadCertificateFromFile(pki.CertificatePath("short-lived"));
        var time = new FakeTimeProvider(DateTimeOffset.UtcNow);
        var check = new ClientCertificates(X509CertificateLoader.LoadCertificateFromFile(pki.CaPath), time);

        Assert.Equal(new Caller("short-lived", Role.Orchestrator, Authenticated: true), check.Check(certificate, out var problem));
        Assert.Null(problem);
        time.Advance(TimeSpan.FromHours(12));
        Assert.Equal(new Caller("short-lived", Role.Orchestrator, Authenticated: true), check.Check(certificate, out problem));

        time.Advance(TimeSpan.FromDays(1));
        Assert.Null(check.Check(certificate, out problem));
        Assert.Contains("expired on", problem);
    }

    /// <summary>The cluster CA's own certificate for clientAuth, but with a key that may only sign certificates: no TLS client (RFC 5280 4.2.1.3).</summary>
    [Fact]
    public void ACertificateWhoseKeyMayNotSign_IsRefused()
    {
        using var pki = ClusterPki.Create();

        Assert.Equal("certificate 'CN=signless, OU=admin' is not a client certificate (its key usage lacks digitalSignature)",
            ProblemOf(pki, "CN=signless, OU=admin", new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign, critical: true)));
    }

    /// <summary>What the check says of a clientAuth certificate the cluster CA signed for <paramref name="subject"/>, with <paramref name="extensions"/>.</summary>
    private static string? ProblemOf(ClusterPki pki, string subject, params X509Extension[] extensions)
    {
        using var key = System.Security.Cryptography.ECDsa.Create(System.Security.Cryptography.ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(subject, key, System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var extension in extensions) request.CertificateExtensions.Add(extension);
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension([new System.Security.Cryptography.Oid("1.3.6.1.5.5.7.3.2")], critical: false));
        var now = DateTimeOffset.UtcNow;
        using var certificate = request.Create(pki.Ca.Certificate, now.AddDays(-1), now.AddDays(1), System.Security.Cryptography.RandomNumberGenerator.GetBytes(8));
        var check = new ClientCertificates(X509CertificateLoader.LoadCertificateFromFile(pki.CaPath), TimeProvider.System);
        Assert.Null(check.Check(certificate, out var problem));
        return problem;
    }

    /// <summary>A certificate of a CA the cluster CA signed is refused as a client's, whatever role it names.</summary>
    [Fact]
    public void ACaCertificate_IsRefusedAsAClients()
    {
        using var pki = ClusterPki.Create();

        Assert.Equal("certificate 'CN=intermediate, OU=admin' is a CA certificate (basicConstraints CA:TRUE); a client presents a leaf certificate issued by netctl pki issue",
            ProblemOf(pki, "CN=intermediate, OU=admin",
                new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: false, pathLengthConstraint: 0, critical: true),
                new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature | X509KeyUsageFlags.KeyCertSign, critical: true)));
    }

    [Fact]
    public void ForeignCertificate_IsRefusedEveryTime_WithTheReason()
    {
        using var pki = ClusterPki.Create();
        using var other = ClusterPki.Create();
        other.Ca.Issue("stranger", "admin");
        var certificate = X509CertificateLoader.LoadCertificateFromFile(other.CertificatePath("stranger"));
        var check = new ClientCertificates(X509CertificateLoader.LoadCertificateFromFile(pki.CaPath), TimeProvider.System);

        for (var i = 0; i < 2; i++)
        {
            Assert.Null(check.Check(certificate, out var problem));
            Assert.Contains("not issued by the cluster CA", problem);
        }
        Assert.Null(check.Check(null, out var none));
        Assert.Contains("no client certificate", none);
    }
}
