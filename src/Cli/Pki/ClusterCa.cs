using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Cli.Pki;

/// <summary>
/// The cluster's small CA, kept as PEM files in one directory: ca.crt and ca.key (ECDSA P-256,
/// ten years), and per holder N.crt and N.key. Silo certificates are server certificates with
/// SANs; every other certificate is a client certificate whose CN is the holder's name (an
/// agent's node name) and whose OU is its role, which is what the silo reads (Caller).
/// Keys are written mode 0600.
/// </summary>
public sealed class ClusterCa
{
    /// <summary>Roles <c>netctl pki issue</c> accepts: the silo's four, plus silo (server) and dns (a reader).</summary>
    public static readonly string[] Roles = ["admin", "orchestrator", "agent", "reader", "silo", "dns"];

    private static readonly string[] DefaultServerNames = ["localhost", "127.0.0.1", "::1"];

    private ClusterCa(string directory, X509Certificate2 certificate)
    {
        Directory = directory;
        Certificate = certificate;
    }

    public string Directory { get; }

    /// <summary>The CA's certificate, with its private key.</summary>
    public X509Certificate2 Certificate { get; }

    public static string CertificatePath(string directory, string name) => Path.Combine(directory, name + ".crt");

    public static string KeyPath(string directory, string name) => Path.Combine(directory, name + ".key");

    /// <summary>Creates the CA in <paramref name="directory"/>; refuses to replace one that exists.</summary>
    public static ClusterCa Init(string directory, string name = "controlplane-ca", TimeProvider? time = null)
    {
        System.IO.Directory.CreateDirectory(directory);
        if (File.Exists(CertificatePath(directory, "ca")) || File.Exists(KeyPath(directory, "ca")))
        {
            throw new InvalidOperationException($"{directory} already holds a CA (ca.crt/ca.key); remove them to start over");
        }
        var now = (time ?? TimeProvider.System).GetUtcNow();
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var request = new CertificateRequest(new X500DistinguishedName($"CN={name}"), key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(certificateAuthority: true, hasPathLengthConstraint: true, pathLengthConstraint: 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.KeyCertSign | X509KeyUsageFlags.CrlSign, critical: true));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        var certificate = request.CreateSelfSigned(now.AddMinutes(-5), now.AddYears(10));
        Write(directory, "ca", certificate, key);
        return new ClusterCa(directory, certificate);
    }

    /// <summary>The CA in <paramref name="directory"/>, as <see cref="Init"/> wrote it.</summary>
    public static ClusterCa Open(string directory)
    {
        if (!File.Exists(CertificatePath(directory, "ca")) || !File.Exists(KeyPath(directory, "ca")))
        {
            throw new InvalidOperationException($"{directory} holds no CA (ca.crt and ca.key); run netctl pki init --dir {directory} first");
        }
        return new ClusterCa(directory, X509Certificate2.CreateFromPemFile(CertificatePath(directory, "ca"), KeyPath(directory, "ca")));
    }

    /// <summary>
    /// Issues N.crt and N.key. <paramref name="role"/> is one of <see cref="Roles"/>; a silo's
    /// certificate names <paramref name="dnsNames"/> and <paramref name="addresses"/> besides
    /// localhost and the loopback addresses. <paramref name="notBefore"/> (default now) lets tests
    /// issue a certificate that has already expired.
    /// </summary>
    public X509Certificate2 Issue(string name, string role, IEnumerable<string>? dnsNames = null, IEnumerable<IPAddress>? addresses = null,
        int days = 365, DateTimeOffset? notBefore = null)
    {
        if (string.IsNullOrWhiteSpace(name) || name.IndexOfAny([',', '=', '+', '"', '\\', '<', '>', ';', '/']) >= 0 || name is "ca")
        {
            throw new ArgumentException($"'{name}' cannot name a certificate (a node, user or host name without , = + \" \\ < > ; /, and not 'ca')", nameof(name));
        }
        if (!Roles.Contains(role)) throw new ArgumentException($"role '{role}' is not one of {string.Join(", ", Roles)}", nameof(role));
        if (days < 1) throw new ArgumentException("a certificate must be valid for at least one day", nameof(days));

        var server = role == "silo";
        var unit = role == "dns" ? "reader" : role;
        using var key = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var subject = server ? new X500DistinguishedName($"CN={name}") : new X500DistinguishedName($"CN={name}, OU={unit}");
        var request = new CertificateRequest(subject, key, HashAlgorithmName.SHA256);
        request.CertificateExtensions.Add(new X509BasicConstraintsExtension(false, false, 0, critical: true));
        request.CertificateExtensions.Add(new X509KeyUsageExtension(X509KeyUsageFlags.DigitalSignature, critical: true));
        request.CertificateExtensions.Add(new X509EnhancedKeyUsageExtension(
            [new Oid(server ? "1.3.6.1.5.5.7.3.1" : "1.3.6.1.5.5.7.3.2")], critical: false));
        request.CertificateExtensions.Add(new X509SubjectKeyIdentifierExtension(request.PublicKey, critical: false));
        request.CertificateExtensions.Add(X509AuthorityKeyIdentifierExtension.CreateFromCertificate(Certificate, includeKeyIdentifier: true, includeIssuerAndSerial: false));
        if (server)
        {
            var names = new SubjectAlternativeNameBuilder();
            var hosts = DefaultServerNames.Concat(dnsNames ?? []).Append(name).Where(h => !IPAddress.TryParse(h, out _)).Distinct(StringComparer.OrdinalIgnoreCase);
            foreach (var host in hosts) names.AddDnsName(host);
            var ips = DefaultServerNames.Where(h => IPAddress.TryParse(h, out _)).Select(IPAddress.Parse)
                .Concat((dnsNames ?? []).Where(h => IPAddress.TryParse(h, out _)).Select(IPAddress.Parse))
                .Concat(addresses ?? []).Distinct();
            foreach (var ip in ips) names.AddIpAddress(ip);
            request.CertificateExtensions.Add(names.Build());
        }
        var from = notBefore ?? DateTimeOffset.UtcNow.AddMinutes(-5);
        var until = from.AddDays(days);
        if (until > Certificate.NotAfter) until = Certificate.NotAfter;
        var serial = RandomNumberGenerator.GetBytes(16);
        serial[0] &= 0x7f;
        using var issued = request.Create(Certificate, from, until, serial);
        var withKey = issued.CopyWithPrivateKey(key);
        Write(Directory, name, withKey, key);
        return withKey;
    }

    private static void Write(string directory, string name, X509Certificate2 certificate, ECDsa key)
    {
        var keyPath = KeyPath(directory, name);
        File.Delete(keyPath);
        // Created 0600 before the key is written, so it is never readable by others.
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write };
        if (!OperatingSystem.IsWindows()) options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite;
        using (var stream = new FileStream(keyPath, options))
        using (var writer = new StreamWriter(stream))
        {
            writer.Write(key.ExportPkcs8PrivateKeyPem());
            writer.Write('\n');
        }
        File.WriteAllText(CertificatePath(directory, name), certificate.ExportCertificatePem() + "\n");
    }
}
