using ControlPlane.Cli.Pki;
using ControlPlane.Contracts.Client;

namespace ControlPlane.Tests.Shared;

/// <summary>
/// A cluster CA in a temporary directory (the code behind <c>netctl pki</c>), with a silo
/// certificate issued, for tests that run processes with mutual TLS.
/// </summary>
internal sealed class ClusterPki : IDisposable
{
    private ClusterPki(string directory)
    {
        Directory = directory;
        // Backdated, so that tests can issue certificates that have already expired.
        Ca = ClusterCa.Init(directory, time: new Backdated(TimeSpan.FromDays(30)));
        Ca.Issue("silo", "silo");
    }

    public string Directory { get; }

    public ClusterCa Ca { get; }

    public string CaPath => ClusterCa.CertificatePath(Directory, "ca");

    public static ClusterPki Create() => new(System.IO.Directory.CreateTempSubdirectory("scpki-").FullName);

    public string CertificatePath(string name) => ClusterCa.CertificatePath(Directory, name);

    public string KeyPath(string name) => ClusterCa.KeyPath(Directory, name);

    /// <summary>Silo settings that turn mutual TLS on with this CA.</summary>
    public string[] SiloSettings =>
        [$"--Tls:Certificate={CertificatePath("silo")}", $"--Tls:Key={KeyPath("silo")}", $"--Tls:ClientCa={CaPath}"];

    /// <summary>Client settings for a holder of <paramref name="name"/> in <paramref name="role"/> (issued on first use).</summary>
    public ClientTls Client(string name, string role)
    {
        if (!File.Exists(CertificatePath(name))) Ca.Issue(name, role);
        return new ClientTls(CaPath, CertificatePath(name), KeyPath(name));
    }

    /// <summary>Trusts the cluster CA but presents no certificate.</summary>
    public ClientTls Anonymous() => new(CaPath, null, null);

    private sealed class Backdated(TimeSpan by) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => base.GetUtcNow() - by;
    }

    public void Dispose()
    {
        try
        {
            System.IO.Directory.Delete(Directory, recursive: true);
        }
        catch (IOException)
        {
        }
    }
}
