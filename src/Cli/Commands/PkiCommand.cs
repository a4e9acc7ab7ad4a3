using System.CommandLine;
using System.Net;
using ControlPlane.Cli.Output;
using ControlPlane.Cli.Pki;

namespace ControlPlane.Cli.Commands;

/// <summary>
/// <c>netctl pki init --dir D</c> creates the cluster CA (D/ca.crt, D/ca.key);
/// <c>netctl pki issue --dir D --name N --role R</c> issues D/N.crt and D/N.key for a silo, an
/// agent (N = its node's name), a DNS server or a user of the CLI. Works offline: no silo is called.
/// </summary>
internal static class PkiCommand
{
    public static Command Create(Terminal terminal)
    {
        var dir = new Option<string>("--dir") { Description = "Directory of the CA and the issued files", Required = true };
        var init = new Command("init", "Create the cluster CA (ECDSA P-256, 10 years): DIR/ca.crt and DIR/ca.key") { dir };
        init.SetAction(parse =>
        {
            var directory = parse.GetValue(dir)!;
            var ca = ClusterCa.Init(directory);
            terminal.Out.WriteLine($"CA '{ca.Certificate.Subject}' written to {ClusterCa.CertificatePath(directory, "ca")}, valid until {ca.Certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
            return ExitCodes.Success;
        });

        var issueDir = new Option<string>("--dir") { Description = "Directory of the CA (from pki init); the files are written there", Required = true };
        var name = new Option<string>("--name") { Description = "CN: the node name for an agent, the user or host name otherwise; the files are NAME.crt and NAME.key", Required = true };
        var role = new Option<string>("--role") { Description = $"One of {string.Join(", ", ClusterCa.Roles)} (silo: a server certificate; dns: a reader)", Required = true };
        role.AcceptOnlyFromAmong(ClusterCa.Roles);
        var dnsNames = new Option<string[]>("--dns-name") { Description = "Silo only: a host name the silo is reached by (repeatable; localhost, 127.0.0.1 and ::1 are always in)", AllowMultipleArgumentsPerToken = false };
        var ips = new Option<string[]>("--ip") { Description = "Silo only: an address the silo is reached by (repeatable)" };
        var days = new Option<int>("--days") { Description = "Days the certificate is valid (default 365)", DefaultValueFactory = _ => 365 };
        var force = new Option<bool>("--force") { Description = "Replace DIR/NAME.crt and DIR/NAME.key when they exist (a program using them takes the new ones when it restarts)" };
        var issue = new Command("issue", "Issue a certificate signed by the cluster CA: DIR/NAME.crt and DIR/NAME.key (mode 0600)") { issueDir, name, role, dnsNames, ips, days, force };
        issue.SetAction(parse =>
        {
            var directory = parse.GetValue(issueDir)!;
            if (!parse.GetValue(force) && new[] { ClusterCa.CertificatePath(directory, parse.GetValue(name)!), ClusterCa.KeyPath(directory, parse.GetValue(name)!) }.FirstOrDefault(File.Exists) is { } existing)
                throw new CliException($"{existing} exists already (a running program may use it); remove it, or give --force to replace it");
            var addresses = new List<IPAddress>();
            foreach (var text in parse.GetValue(ips) ?? [])
            {
                addresses.Add(IPAddress.TryParse(text, out var address) ? address : throw CliException.Usage($"--ip '{text}' is not an IP address"));
            }
            var certificate = Issue(ClusterCa.Open(directory), parse.GetValue(name)!, parse.GetValue(role)!, parse.GetValue(dnsNames) ?? [], addresses, parse.GetValue(days));
            terminal.Out.WriteLine($"'{certificate.Subject}' written to {ClusterCa.CertificatePath(directory, parse.GetValue(name)!)}, valid until {certificate.NotAfter.ToUniversalTime():yyyy-MM-dd}");
            return ExitCodes.Success;
        });
        return new Command("pki", "The cluster's certificates for mutual TLS (works offline)") { init, issue };
    }

    private static System.Security.Cryptography.X509Certificates.X509Certificate2 Issue(ClusterCa ca, string name, string role, string[] dnsNames, List<IPAddress> addresses, int days)
    {
        if (role != "silo" && (dnsNames.Length > 0 || addresses.Count > 0)) throw CliException.Usage("--dns-name and --ip are for silo certificates only");
        try
        {
            return ca.Issue(name, role, dnsNames, addresses, days);
        }
        catch (ArgumentException e)
        {
            throw CliException.Usage(e.Message.Split(" (Parameter")[0]);
        }
    }
}
