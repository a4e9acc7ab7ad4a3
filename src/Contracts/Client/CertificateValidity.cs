using System.Globalization;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Contracts.Client;

/// <summary>The one wording of a certificate outside its validity, for every side that checks one.</summary>
public static class CertificateValidity
{
    /// <summary>"expired on …" or "is not valid before …" (UTC), or null while <paramref name="certificate"/> is valid at <paramref name="utcNow"/>.</summary>
    public static string? Problem(X509Certificate2 certificate, DateTime utcNow)
    {
        var (notBefore, notAfter) = (certificate.NotBefore.ToUniversalTime(), certificate.NotAfter.ToUniversalTime());
        return notAfter < utcNow ? $"expired on {Format(notAfter)} UTC"
            : notBefore > utcNow ? $"is not valid before {Format(notBefore)} UTC"
            : null;
    }

    private static string Format(DateTime utc) => utc.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture);
}
