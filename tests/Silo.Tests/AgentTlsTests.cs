using System.Diagnostics;
using ControlPlane.Tests.Shared;
using Grpc.Core;

namespace ControlPlane.Silo.Tests;

/// <summary>The node agent process over mutual TLS, holding its node's certificate.</summary>
public sealed class AgentTlsTests
{
    /// <summary>An agent whose attach socket lives in <paramref name="directory"/> (removed with it: a killed agent leaves its socket).</summary>
    private static Process StartAgent(SiloProcess silo, ClusterPki pki, string certificate, string nodeName, string underlay, List<string> output, string directory)
    {
        var info = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])[Path.Combine(AppContext.BaseDirectory, "ControlPlane.NodeAgent.dll"), $"--Agent:ControlPlane={silo.Address}",
                     $"--Agent:NodeName={nodeName}", $"--Agent:UnderlayIp={underlay}",
                     $"--Agent:Ca={pki.CaPath}", $"--Agent:Certificate={pki.CertificatePath(certificate)}", $"--Agent:Key={pki.KeyPath(certificate)}",
                     // This agent runs in the test's own namespace: it must not change it.
                     "--Agent:EnableForwarding=false", "--Agent:ServiceProxy=false", "--Agent:NetworkPolicy=false",
                     $"--Agent:AttachSocket={Path.Combine(directory, $"agent-{nodeName}.sock")}"]) info.ArgumentList.Add(arg);
        var agent = Process.Start(info)!;
        agent.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.Add(e.Data); };
        agent.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (output) output.Add(e.Data); };
        agent.BeginOutputReadLine();
        agent.BeginErrorReadLine();
        return agent;
    }

    /// <summary>
    /// A TLS client that offers no ALPN (openssl s_client, a load balancer's TLS probe, curl of
    /// /healthz without --http2) is served HTTP/1.1 rather than logged as an error: the silo's
    /// log keeps no fail or crit line for it, and gRPC clients (ALPN h2) are served as before.
    /// </summary>
    [Fact]
    public async Task Silo_ServesTlsClientsWithoutAlpn_WithoutLoggingAnError()
    {
        using var pki = ClusterPki.Create();
        var data = Path.Combine(Path.GetTempPath(), "sc-alpn-" + Guid.NewGuid().ToString("N"));
        await using var silo = await SiloProcess.StartAsync(data, pki);
        try
        {
            using var ca = System.Security.Cryptography.X509Certificates.X509CertificateLoader.LoadCertificateFromFile(pki.CaPath);
            for (var i = 0; i < 3; i++)
            {
                using var tcp = new System.Net.Sockets.TcpClient();
                await tcp.ConnectAsync(silo.Address.Host, silo.Address.Port);
                await using var tls = new System.Net.Security.SslStream(tcp.GetStream());
                await tls.AuthenticateAsClientAsync(new System.Net.Security.SslClientAuthenticationOptions
                {
                    TargetHost = "localhost",
                    RemoteCertificateValidationCallback = (_, certificate, _, _) => certificate is not null && new System.Security.Cryptography.X509Certificates.X509Certificate2(certificate).Issuer == ca.Subject,
                });
                await tls.WriteAsync("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"u8.ToArray());
                var reply = await new StreamReader(tls).ReadToEndAsync();
                Assert.StartsWith("HTTP/1.1 ", reply, StringComparison.Ordinal);
            }
            await silo.Client.Namespaces.ListAsync(new ControlPlane.Contracts.V1.ListRequest());
        }
        finally
        {
            var lines = await silo.TerminateAsync();
            Assert.DoesNotContain(lines, l => l.Contains(" fail: ", StringComparison.Ordinal) || l.Contains(" crit: ", StringComparison.Ordinal));
            Directory.Delete(data, recursive: true);
        }
    }

    [Fact]
    public async Task Agent_WithItsNodesCertificate_RegistersAndHeartbeats_ButNotUnderAnotherName()
    {
        using var pki = ClusterPki.Create();
        pki.Ca.Issue("tls-node-1", "agent");
        var data = Path.Combine(Path.GetTempPath(), "sc-agent-" + Guid.NewGuid().ToString("N"));
        var silo = await SiloProcess.StartAsync(data, pki, "--ControlPlane:NodeLeaseDuration=00:00:05");
        var output = new List<string>();
        using var own = StartAgent(silo, pki, "tls-node-1", "tls-node-1", "10.255.0.41", output, data);
        // node-1's certificate, but the agent calls itself node-2: it stops at start, saying why
        // (the silo would refuse every one of its calls).
        using var impostor = StartAgent(silo, pki, "tls-node-1", "tls-node-2", "10.255.0.42", output, data);
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (true)
            {
                try
                {
                    var node = await silo.Client.Nodes.GetAsync("", "tls-node-1");
                    if (node.Status?.Ready == true) break;
                }
                catch (RpcException e) when (e.StatusCode == StatusCode.NotFound)
                {
                }
                if (DateTime.UtcNow > deadline)
                {
                    lock (output) Assert.Fail("the agent did not register its node over TLS:\n" + string.Join("\n", output));
                }
                await Task.Delay(200);
            }
            // Its lease is kept (5 s) by heartbeats over TLS.
            await Task.Delay(TimeSpan.FromSeconds(7));
            Assert.True((await silo.Client.Nodes.GetAsync("", "tls-node-1")).Status.Ready);
            var refused = await Assert.ThrowsAsync<RpcException>(() => silo.Client.Nodes.GetAsync("", "tls-node-2"));
            Assert.Equal(StatusCode.NotFound, refused.StatusCode);
            await impostor.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(2, impostor.ExitCode);
            lock (output) Assert.Contains(output, line => line.Contains("Agent:NodeName 'tls-node-2' is not the node Agent:Certificate was issued for ('tls-node-1')", StringComparison.Ordinal));
        }
        finally
        {
            foreach (var agent in new[] { own, impostor })
            {
                if (!agent.HasExited) agent.Kill();
                await agent.WaitForExitAsync();
            }
            await silo.DisposeAsync();
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>The cluster CA and another certificate in one file (made beside the data directory).</summary>
    private static string Bundle(ClusterPki pki, string data)
    {
        var path = data + "-bundle.crt";
        File.WriteAllText(path, File.ReadAllText(pki.CaPath) + File.ReadAllText(pki.CertificatePath("alice")));
        return path;
    }

    /// <summary>TLS settings that cannot work stop the silo at start, saying why.</summary>
    [Theory]
    [InlineData("--Tls:ClientCa=", "Tls:Certificate, Tls:Key and Tls:ClientCa go together")]
    [InlineData("--Dns:Enabled=true", "Dns:Enabled with Tls:* needs a Silo:UnixSocket")]
    public async Task Silo_WithUnusableTlsSettings_DoesNotStart(string setting, string message)
    {
        using var pki = ClusterPki.Create();
        var data = Path.Combine(Path.GetTempPath(), "sc-tlscfg-" + Guid.NewGuid().ToString("N"));
        try
        {
            var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => SiloProcess.StartAsync(data, pki, setting));
            Assert.Contains(message, failed.Message);
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
    }

    /// <summary>
    /// Files that exist but cannot serve stop the silo at start (exit 2), naming the setting: a key
    /// of another certificate (which crashed it with an unhandled exception), an expired
    /// certificate (every client would refuse it), a client CA that is no CA.
    /// </summary>
    [Fact]
    public async Task Silo_WithTlsFilesThatCannotServe_DoesNotStart_NamingTheSetting()
    {
        using var pki = ClusterPki.Create();
        pki.Ca.Issue("other", "silo");
        pki.Ca.Issue("old", "silo", days: 1, notBefore: DateTimeOffset.UtcNow.AddDays(-10));
        pki.Ca.Issue("alice", "admin");
        var data = Path.Combine(Path.GetTempPath(), "sc-tlsfiles-" + Guid.NewGuid().ToString("N"));
        try
        {
            foreach (var (settings, parts) in new (string[], string[])[]
            {
                ([$"--Tls:Key={pki.KeyPath("other")}"], [$"Tls:Certificate, Tls:Key: cannot use '{pki.CertificatePath("silo")}' with '{pki.KeyPath("other")}'"]),
                ([$"--Tls:Certificate={pki.CertificatePath("old")}", $"--Tls:Key={pki.KeyPath("old")}"], ["Tls:Certificate: the certificate ('", "CN=old", "') expired on "]),
                ([$"--Tls:ClientCa={pki.CertificatePath("alice")}"], ["Tls:ClientCa: '", "CN=alice", "' is not a CA certificate"]),
                // A client's certificate as the silo's: Kestrel would refuse it only once the host starts, with a stack trace.
                ([$"--Tls:Certificate={pki.CertificatePath("alice")}", $"--Tls:Key={pki.KeyPath("alice")}"], ["Tls:Certificate: '", "CN=alice", "' is not a server certificate (no serverAuth usage)"]),
                // A bundle: only its first certificate would be trusted.
                ([$"--Tls:ClientCa={Bundle(pki, data)}"], ["Tls:ClientCa: '", "' holds 2 certificates; give one"]),
            })
            {
                var failed = await Assert.ThrowsAsync<InvalidOperationException>(() => SiloProcess.StartAsync(data, pki, settings));
                Assert.All(parts, part => Assert.Contains(part, failed.Message));
                Assert.DoesNotContain("Unhandled exception", failed.Message);
            }
        }
        finally
        {
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
            File.Delete(data + "-bundle.crt");
        }
    }

    /// <summary>The silo's embedded DNS server follows the silo over its TLS port with a dns certificate.</summary>
    [Fact]
    public async Task EmbeddedDns_WithItsCertificate_FollowsTheTlsPort()
    {
        using var pki = ClusterPki.Create();
        pki.Ca.Issue("dns", "dns");
        var data = Path.Combine(Path.GetTempPath(), "sc-tlsdns-" + Guid.NewGuid().ToString("N"));
        var (api, dns) = (Ports.FreeTcpAndUdp(21100, 21199), Ports.FreeTcpAndUdp(21200, 21299));
        var silo = await SiloProcess.StartAsync(data, pki, "--Dns:Enabled=true", $"--Silo:Port={api}", $"--Dns:Listen=127.0.0.1:{dns}",
            $"--Dns:Ca={pki.CaPath}", $"--Dns:Certificate={pki.CertificatePath("dns")}", $"--Dns:Key={pki.KeyPath("dns")}");
        string output;
        try
        {
            // The feed's first snapshot comes over the TLS port, with the dns certificate.
            await silo.WaitForLineAsync(line => line.Contains("Zone snapshot", StringComparison.Ordinal), TimeSpan.FromSeconds(30));
        }
        finally
        {
            output = string.Join("\n", await silo.TerminateAsync());
            await silo.DisposeAsync();
            if (Directory.Exists(data)) Directory.Delete(data, recursive: true);
        }
        Assert.DoesNotContain("Unauthenticated", output);
    }
}
