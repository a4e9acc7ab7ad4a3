using System.Security.Cryptography.X509Certificates;

namespace ControlPlane.Cli.Tests;

/// <summary>netctl pki init/issue, and netctl over mutual TLS with what they wrote.</summary>
public sealed class PkiTests
{
    private const string ServerAuth = "1.3.6.1.5.5.7.3.1";
    private const string ClientAuth = "1.3.6.1.5.5.7.3.2";

    private static async Task Ok(params string[] args)
    {
        var result = await Netctl.RunAsync(args);
        Assert.True(result.ExitCode == 0, result.ToString());
    }

    private static string[] Usages(X509Certificate2 certificate) =>
        [.. certificate.Extensions.OfType<X509EnhancedKeyUsageExtension>().SelectMany(e => e.EnhancedKeyUsages.Cast<System.Security.Cryptography.Oid>()).Select(o => o.Value!)];

    private static string? Unit(X509Certificate2 certificate) => certificate.SubjectName.EnumerateRelativeDistinguishedNames()
        .Where(n => n.GetSingleElementType().Value == "2.5.4.11").Select(n => n.GetSingleElementValue()).FirstOrDefault();

    [Fact]
    public async Task InitAndIssue_WriteCertificatesWithNameRoleNamesAndUsages_KeysPrivate()
    {
        using var dir = new TempDirectory();
        var d = dir.Path;
        await Ok("pki", "init", "--dir", d);
        await Ok("pki", "issue", "--dir", d, "--name", "silo-1", "--role", "silo", "--dns-name", "silo-1.example", "--ip", "10.1.2.3");
        await Ok("pki", "issue", "--dir", d, "--name", "node-1", "--role", "agent", "--days", "30");
        await Ok("pki", "issue", "--dir", d, "--name", "dns-1", "--role", "dns");

        var ca = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(d, "ca.crt"));
        Assert.True(ca.Extensions.OfType<X509BasicConstraintsExtension>().Single().CertificateAuthority);
        using (var key = ca.GetECDsaPublicKey()) Assert.Equal(256, key!.KeySize);
        Assert.True(ca.NotAfter > DateTime.UtcNow.AddYears(9));

        var silo = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(d, "silo-1.crt"));
        Assert.Equal("silo-1", silo.GetNameInfo(X509NameType.SimpleName, false));
        Assert.Equal([ServerAuth], Usages(silo));
        var san = silo.Extensions.OfType<X509SubjectAlternativeNameExtension>().Single();
        Assert.Equal(["localhost", "silo-1.example", "silo-1"], san.EnumerateDnsNames().ToArray());
        Assert.Equal(["127.0.0.1", "::1", "10.1.2.3"], san.EnumerateIPAddresses().Select(a => a.ToString()).ToArray());

        var agent = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(d, "node-1.crt"));
        Assert.Equal("node-1", agent.GetNameInfo(X509NameType.SimpleName, false));
        Assert.Equal("agent", Unit(agent));
        Assert.Equal([ClientAuth], Usages(agent));
        Assert.InRange((agent.NotAfter - agent.NotBefore).TotalDays, 29.9, 30.1);

        var dns = X509CertificateLoader.LoadCertificateFromFile(Path.Combine(d, "dns-1.crt"));
        Assert.Equal("reader", Unit(dns));

        foreach (var name in new[] { "ca", "silo-1", "node-1", "dns-1" })
        {
            if (!OperatingSystem.IsWindows()) Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(d, name + ".key")));
            using var chain = new X509Chain();
            chain.ChainPolicy.TrustMode = X509ChainTrustMode.CustomRootTrust;
            chain.ChainPolicy.CustomTrustStore.Add(ca);
            chain.ChainPolicy.RevocationMode = X509RevocationMode.NoCheck;
            if (name != "ca") Assert.True(chain.Build(X509CertificateLoader.LoadCertificateFromFile(Path.Combine(d, name + ".crt"))), name);
        }

        // A second init does not replace the CA; a role that does not exist is a usage error.
        var again = await Netctl.RunAsync(["pki", "init", "--dir", d]);
        Assert.Equal(1, again.ExitCode);
        Assert.Contains("already holds a CA", again.Error);
        // Nor does a second issue of a name replace its key (a running program may use it), unless told to.
        var siloKey = File.ReadAllBytes(Path.Combine(d, "silo-1.key"));
        var reissue = await Netctl.RunAsync(["pki", "issue", "--dir", d, "--name", "silo-1", "--role", "silo"]);
        Assert.Equal(1, reissue.ExitCode);
        Assert.Contains("silo-1.crt exists already (a running program may use it); remove it, or give --force to replace it", reissue.Error);
        Assert.Equal(siloKey, File.ReadAllBytes(Path.Combine(d, "silo-1.key")));
        await Ok("pki", "issue", "--dir", d, "--name", "silo-1", "--role", "silo", "--force");
        Assert.NotEqual(siloKey, File.ReadAllBytes(Path.Combine(d, "silo-1.key")));
        Assert.Equal(2, (await Netctl.RunAsync(["pki", "issue", "--dir", d, "--name", "x", "--role", "root"])).ExitCode);
        Assert.Equal(2, (await Netctl.RunAsync(["pki", "issue", "--dir", d, "--name", "x", "--role", "agent", "--ip", "10.0.0.1"])).ExitCode);
    }

    [Fact]
    public async Task Netctl_WithCaCertAndKey_TalksToATlsSilo_AsItsRole()
    {
        using var dir = new TempDirectory();
        var d = dir.Path;
        await Ok("pki", "init", "--dir", d);
        await Ok("pki", "issue", "--dir", d, "--name", "silo", "--role", "silo");
        await Ok("pki", "issue", "--dir", d, "--name", "admin", "--role", "admin");
        await Ok("pki", "issue", "--dir", d, "--name", "viewer", "--role", "reader");
        await using var silo = await Silo.StartAsync(pki: d);
        Assert.StartsWith("https://", silo.Address);
        await silo.Client.Namespaces.CreateAsync(new Contracts.V1.Namespace { Metadata = new Contracts.V1.ObjectMeta { Name = "shop" } });

        var admin = await Netctl.RunAsync(["--server", silo.Address, "--ca", $"{d}/ca.crt", "--cert", $"{d}/admin.crt", "--key", $"{d}/admin.key", "get", "namespaces"]);
        Assert.True(admin.ExitCode == 0, admin.ToString());
        Assert.Contains("shop", admin.Output);

        // The same from the environment, as a reader: reads work, a delete is refused naming the role.
        var environment = new Dictionary<string, string>
        {
            ["NETCTL_SERVER"] = silo.Address, ["NETCTL_CA"] = $"{d}/ca.crt", ["NETCTL_CERT"] = $"{d}/viewer.crt", ["NETCTL_KEY"] = $"{d}/viewer.key",
        };
        var read = await Netctl.RunAsync(["get", "namespaces"], environment: environment);
        Assert.True(read.ExitCode == 0, read.ToString());
        var delete = await Netctl.RunAsync(["delete", "namespace", "shop"], environment: environment);
        Assert.Equal(1, delete.ExitCode);
        Assert.Contains("role reader (viewer)", delete.Error);
        Assert.Equal("shop", (await silo.Client.Namespaces.GetAsync("", "shop")).Metadata.Name);

        // Without a certificate the silo says who is missing.
        var anonymous = await Netctl.RunAsync(["--server", silo.Address, "--ca", $"{d}/ca.crt", "get", "namespaces"]);
        Assert.Equal(1, anonymous.ExitCode);
        Assert.Contains("no client certificate", anonymous.Error);

        // The two usual mistakes are named: no --ca for the silo's certificate, and http:// for a TLS port.
        var untrusted = await Netctl.RunAsync(["--server", silo.Address, "--timeout", "5s", "get", "namespaces"]);
        Assert.Equal(1, untrusted.ExitCode);
        Assert.Contains("the TLS handshake failed: give the cluster CA that issued the server's certificate with --ca", untrusted.Error);
        // Another CA under the same name: our check says so (the TLS layer alone only says a callback refused it).
        await Ok("pki", "init", "--dir", $"{d}/other");
        var otherCa = await Netctl.RunAsync(["--server", silo.Address, "--timeout", "5s", "--ca", $"{d}/other/ca.crt", "--cert", $"{d}/admin.crt", "--key", $"{d}/admin.key", "get", "namespaces"]);
        Assert.Equal(1, otherCa.ExitCode);
        Assert.Contains("the TLS handshake failed: the server's certificate ('CN=silo", otherCa.Error);
        Assert.Contains("is signed by another CA than the cluster CA given, under the same name ('CN=controlplane-ca')", otherCa.Error);
        Assert.Contains("; give the cluster CA that issued the server's certificate with --ca", otherCa.Error);
        var cleartext = await Netctl.RunAsync(["--server", silo.Address.Replace("https://", "http://", StringComparison.Ordinal), "--timeout", "5s", "get", "namespaces"]);
        Assert.Equal(1, cleartext.ExitCode);
        Assert.Contains("if that port serves TLS, use an https:// address with --ca", cleartext.Error);
    }

    /// <summary>
    /// TLS settings that do not go together, or name a file that is not there, are refused naming
    /// where each came from: the variable, the configuration file's line, the option. Only when all
    /// the settings a problem is about came from the command line is it a usage error (exit 2);
    /// otherwise it is bad configuration (exit 1), as for any other setting.
    /// </summary>
    [Fact]
    public async Task TlsSettings_Bad_NameWhereTheyCameFrom_AndAreUsageErrorsOnlyOnTheCommandLine()
    {
        using var dir = new TempDirectory();
        var d = dir.Path;
        await Ok("pki", "init", "--dir", d);
        await Ok("pki", "issue", "--dir", d, "--name", "silo", "--role", "silo");
        await Ok("pki", "issue", "--dir", d, "--name", "admin", "--role", "admin");
        await using var silo = await Silo.StartAsync(pki: d);
        var (ca, cert, key) = ($"{d}/ca.crt", $"{d}/admin.crt", $"{d}/admin.key");
        Dictionary<string, string> Environment(params (string Key, string Value)[] settings) =>
            new[] { ("NETCTL_SERVER", silo.Address) }.Concat(settings).ToDictionary(s => s.Item1, s => s.Item2);
        var noKey = dir.File("nokey.yaml", $"server: {silo.Address}\nca: {ca}\ncert: {cert}\n");
        var noCa = dir.File("noca.yaml", $"server: {silo.Address}\ncert: {cert}\nkey: {key}\n");
        string[] get = ["get", "ns"];

        var results = new[]
        {
            (await Netctl.RunAsync(get, environment: Environment(("NETCTL_CA", ca), ("NETCTL_CERT", cert))), 1,
                $"error: NETCTL_CERT={cert}: a certificate needs its key"),
            (await Netctl.RunAsync(get, environment: Environment(("NETCTL_CERT", cert), ("NETCTL_KEY", key))), 1,
                $"error: NETCTL_CERT={cert} and NETCTL_KEY={key}: a client certificate needs the cluster CA"),
            (await Netctl.RunAsync(get, environment: Environment(("NETCTL_CA", "/nonexistent/ca.crt"))), 1,
                "error: NETCTL_CA=/nonexistent/ca.crt: '/nonexistent/ca.crt' does not exist"),
            (await Netctl.RunAsync(["--config", noKey, .. get]), 1, $"error: {noKey}: line 3: cert: a certificate needs its key"),
            (await Netctl.RunAsync(["--config", noCa, .. get]), 1, $"error: {noCa}: line 2: cert and {noCa}: line 3: key: a client certificate needs the cluster CA"),
            // Settings given on the command line only: a usage error.
            (await Netctl.RunAsync(["--ca", ca, "--cert", cert, .. get], environment: Environment()), 2, "error: --cert: a certificate needs its key"),
            (await Netctl.RunAsync(["--ca", "/nonexistent/ca.crt", .. get], environment: Environment()), 2, "error: --ca: '/nonexistent/ca.crt' does not exist"),
            // One of the settings a problem is about came from the environment: configuration, exit 1.
            (await Netctl.RunAsync(["--cert", cert, .. get], environment: Environment(("NETCTL_KEY", key))), 1,
                $"error: --cert and NETCTL_KEY={key}: a client certificate needs the cluster CA"),
        };
        foreach (var (result, exitCode, error) in results)
        {
            Assert.True(result.ExitCode == exitCode, result.ToString());
            Assert.StartsWith(error, Assert.Single(result.Errors));
        }

        // Completed, the same settings work.
        var fixedUp = await Netctl.RunAsync(["--key", key, .. get], environment: Environment(("NETCTL_CA", ca), ("NETCTL_CERT", cert)));
        Assert.True(fixedUp.ExitCode == 0, fixedUp.ToString());

        // Relative paths in the file are relative to the file, wherever netctl runs (as in a kubeconfig).
        var relative = dir.File("relative.yaml", $"server: {silo.Address}\nca: ca.crt\ncert: admin.crt\nkey: ./admin.key\n");
        var fromFile = await Netctl.RunAsync(["--config", relative, .. get]);
        Assert.True(fromFile.ExitCode == 0, fromFile.ToString());
    }
}
