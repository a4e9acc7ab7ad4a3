using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using ControlPlane.Tests.Shared;
using Grpc.Core;
using static ControlPlane.Silo.Tests.Fixtures;

namespace ControlPlane.Silo.Tests;

/// <summary>One silo process with mutual TLS on, and the cluster CA that issues every caller's certificate.</summary>
public sealed class TlsSiloFixture : IAsyncLifetime
{
    private readonly string _data = Path.Combine(Path.GetTempPath(), "sc-tls-" + Guid.NewGuid().ToString("N"));

    internal ClusterPki Pki { get; } = ClusterPki.Create();

    internal SiloProcess Silo { get; private set; } = null!;

    /// <summary>The silo's unix socket: a local admin channel without TLS.</summary>
    internal string Socket { get; } = Path.Combine(Path.GetTempPath(), "sc-tls-" + Guid.NewGuid().ToString("N")[..8] + ".sock");

    /// <summary>A namespace "ns", a network "net" and nodes node-1 and node-2, made by the admin.</summary>
    public async Task InitializeAsync()
    {
        // A long lease: no expiry writes while a test compares store positions.
        Silo = await SiloProcess.StartAsync(_data, Pki, $"--Silo:UnixSocket={Socket}", "--ControlPlane:NodeLeaseDuration=00:10:00");
        await Silo.Client.Namespaces.CreateAsync(Namespace("ns"));
        await Silo.Client.Networks.CreateAsync(Network("net", 100, "10.20.0.0/16"));
        await Silo.Client.Nodes.CreateAsync(Node("node-1", "10.255.0.1"));
        await Silo.Client.Nodes.CreateAsync(Node("node-2", "10.255.0.2"));
    }

    /// <summary>The silo's audit log, one parsed line per entry.</summary>
    internal List<System.Text.Json.JsonElement> AuditLines() =>
        [.. File.ReadAllLines(Path.Combine(_data, "audit.jsonl")).Select(line => System.Text.Json.JsonDocument.Parse(line).RootElement)];

    internal ControlPlaneClient Client(string name, string role) => new(Silo.Address.ToString(), tls: Pki.Client(name, role));

    public async Task DisposeAsync()
    {
        await Silo.DisposeAsync();
        Pki.Dispose();
        File.Delete(Socket);
        if (Directory.Exists(_data)) Directory.Delete(_data, recursive: true);
    }
}

/// <summary>
/// Mutual TLS and roles against a real silo process: who is refused (UNAUTHENTICATED), what each
/// role may not do (PERMISSION_DENIED naming role and rule), and that a refused call changes nothing.
/// </summary>
public sealed class SecurityTests(TlsSiloFixture cluster) : IClassFixture<TlsSiloFixture>
{
    private static async Task<RpcException> Fails(StatusCode code, Func<Task> call, params string[] fragments)
    {
        var error = await Assert.ThrowsAsync<RpcException>(call);
        Assert.True(code == error.StatusCode, $"expected {code}, got {error.StatusCode}: {error.Status.Detail}");
        foreach (var fragment in fragments) Assert.Contains(fragment, error.Status.Detail);
        Assert.True(Calls.IsClassified(error), $"{code} is not marked {Calls.ClassifiedTrailer}");
        return error;
    }

    [Fact]
    public async Task Call_WithoutClientCertificate_IsUnauthenticated()
    {
        using var client = new ControlPlaneClient(cluster.Silo.Address.ToString(), tls: cluster.Pki.Anonymous());
        await Fails(StatusCode.Unauthenticated, () => client.Namespaces.ListAsync(new ListRequest()), "no client certificate");
        await Fails(StatusCode.Unauthenticated, () => client.Namespaces.CreateAsync(Namespace("anon")), "no client certificate");
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Namespaces.GetAsync("", "anon"));

        // The refused write is audited (the refused read is not, as no read is), with the reason and no role.
        var refused = cluster.AuditLines().Where(e => e.GetProperty("outcome").GetString() == "UNAUTHENTICATED").ToList();
        var line = Assert.Single(refused, e => e.GetProperty("error").GetString()!.Contains("no client certificate", StringComparison.Ordinal));
        Assert.Equal(("Create", "Namespace", false), (line.GetProperty("method").GetString(), line.GetProperty("kind").GetString(), line.GetProperty("authenticated").GetBoolean()));
        Assert.Equal("127.0.0.1", line.GetProperty("caller").GetString());
        Assert.StartsWith("ipv4:127.0.0.1:", line.GetProperty("peer").GetString());
        Assert.False(line.TryGetProperty("role", out _));
        Assert.DoesNotContain(cluster.AuditLines(), e => e.GetProperty("method").GetString() == "List");
    }

    [Fact]
    public async Task Call_WithCertificateOfAnotherCa_IsUnauthenticated()
    {
        using var other = ClusterPki.Create();
        other.Ca.Issue("mallory", "admin");
        // Trusts our silo (our CA) but presents a certificate the other CA signed.
        using var client = new ControlPlaneClient(cluster.Silo.Address.ToString(),
            tls: new ClientTls(cluster.Pki.CaPath, other.CertificatePath("mallory"), other.KeyPath("mallory")));
        await Fails(StatusCode.Unauthenticated, () => client.Namespaces.CreateAsync(Namespace("mallory")), "not issued by the cluster CA");
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Namespaces.GetAsync("", "mallory"));
        Assert.Contains(cluster.AuditLines(), e => e.GetProperty("outcome").GetString() == "UNAUTHENTICATED"
            && e.GetProperty("error").GetString()!.Contains("CN=mallory", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Call_WithExpiredCertificate_IsUnauthenticated()
    {
        cluster.Pki.Ca.Issue("expired-admin", "admin", days: 1, notBefore: DateTimeOffset.UtcNow.AddDays(-10));
        using var client = new ControlPlaneClient(cluster.Silo.Address.ToString(),
            tls: new ClientTls(cluster.Pki.CaPath, cluster.Pki.CertificatePath("expired-admin"), cluster.Pki.KeyPath("expired-admin")));
        await Fails(StatusCode.Unauthenticated, () => client.Namespaces.CreateAsync(Namespace("late")), "expired on");
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Namespaces.GetAsync("", "late"));
    }

    /// <summary>
    /// A certificate names one role, spelled as netctl pki writes it. One the cluster CA signed with
    /// two OUs (openssl makes it, as a CA operator might) would otherwise be whichever OU the
    /// parser met first or last: a reader could become an admin. One whose OU is "Admin" names no
    /// role, so that a certificate is read one way only.
    /// </summary>
    [Theory]
    [InlineData("/OU=reader/OU=admin/CN=twoou", "twoou", "names 2 roles")]
    [InlineData("/OU=Admin/CN=upper", "upper", "names no role")]
    [InlineData("/OU=ADMIN/CN=shout", "shout", "names no role")]
    [InlineData("/OU=admin", "nocn", "names no single holder: its one CN is the user's or node's name")]
    [InlineData("/OU=reader/CN=alice/CN=root", "twocn", "names no single holder")]
    public async Task Call_WithCertificateNotNamingOneRoleExactly_IsUnauthenticated(string subject, string name, string reason)
    {
        var key = Path.Combine(cluster.Pki.Directory, $"{name}.key");
        var request = Path.Combine(cluster.Pki.Directory, $"{name}.csr");
        var certificate = Path.Combine(cluster.Pki.Directory, $"{name}.crt");
        var extensions = Path.Combine(cluster.Pki.Directory, $"{name}.ext");
        File.WriteAllText(extensions, "extendedKeyUsage=clientAuth\nkeyUsage=critical,digitalSignature\nbasicConstraints=critical,CA:FALSE\n");
        Shell.Must("openssl", "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", request, "-subj", subject);
        Shell.Must("openssl", "x509", "-req", "-in", request, "-CA", cluster.Pki.CaPath, "-CAkey", cluster.Pki.KeyPath("ca"), "-CAcreateserial", "-days", "2", "-extfile", extensions, "-out", certificate);
        using var client = new ControlPlaneClient(cluster.Silo.Address.ToString(), tls: new ClientTls(cluster.Pki.CaPath, certificate, key));
        await Fails(StatusCode.Unauthenticated, () => client.Namespaces.CreateAsync(Namespace(name)), reason);
        await Fails(StatusCode.Unauthenticated, () => client.Namespaces.ListAsync(new ListRequest()), reason);
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Namespaces.GetAsync("", name));
    }

    [Fact]
    public async Task Agent_CannotTouchAnotherNode_ButCanItsOwn()
    {
        using var agent = cluster.Client("node-1", "agent");
        var before = await PositionAsync(cluster.Silo.Client);
        var node2 = await cluster.Silo.Client.Nodes.GetAsync("", "node-2");

        await Fails(StatusCode.PermissionDenied, () => agent.HeartbeatAsync("node-2"), "role agent (node-1)", "own node", "node-2");
        await Fails(StatusCode.PermissionDenied, () => agent.ReportProgrammedAsync("node-2", ""), "role agent (node-1)", "node-2");
        var changed = node2.Clone();
        changed.Spec.UnderlayIp = "10.255.0.99";
        await Fails(StatusCode.PermissionDenied, () => agent.Nodes.UpdateAsync(changed), "role agent (node-1)", "node-2");
        await Fails(StatusCode.PermissionDenied, () => agent.Nodes.CreateAsync(Node("node-3")), "role agent (node-1)", "node-3");
        await Fails(StatusCode.PermissionDenied, () => agent.Nodes.DeleteAsync("", "node-2"), "role agent (node-1)");
        await Fails(StatusCode.PermissionDenied, () => agent.Endpoints.CreateAsync(Endpoint("ns", "on-2", "net", "node-2")),
            "role agent (node-1) may only change endpoints on its own node", "endpoint ns/on-2 is on node node-2");
        await Fails(StatusCode.PermissionDenied, () => agent.Networks.CreateAsync(Network("agent-net", 101, "10.21.0.0/16")), "role agent (node-1)");
        await Fails(StatusCode.PermissionDenied, () => agent.Services.CreateAsync(Service("ns", "svc", "net")), "role agent (node-1)");

        // Nothing changed: the store has no new revision, node-2 is as it was, no endpoint on-2.
        Assert.Equal(before, await PositionAsync(cluster.Silo.Client));
        Assert.Equal(node2.Metadata.Etag, (await cluster.Silo.Client.Nodes.GetAsync("", "node-2")).Metadata.Etag);
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Endpoints.GetAsync("ns", "on-2"));

        // node-2's endpoint, made by the admin, cannot be deleted by node-1's agent.
        await cluster.Silo.Client.Endpoints.CreateAsync(Endpoint("ns", "theirs", "net", "node-2"));
        await Fails(StatusCode.PermissionDenied, () => agent.Endpoints.DeleteAsync("ns", "theirs"),
            "role agent (node-1) may only change endpoints on its own node", "endpoint ns/theirs is on node node-2");
        Assert.Equal("node-2", (await cluster.Silo.Client.Endpoints.GetAsync("ns", "theirs")).Spec.Node);
        // Nor updated, whichever node the update names.
        var theirs = await cluster.Silo.Client.Endpoints.GetAsync("ns", "theirs");
        var claimed = theirs.Clone();
        claimed.Spec.Node = "node-1";
        claimed.Spec.Ready = !theirs.Spec.Ready;
        await Fails(StatusCode.PermissionDenied, () => agent.Endpoints.UpdateAsync(claimed),
            "role agent (node-1) may only change endpoints on its own node", "endpoint ns/theirs is on node node-2");
        claimed.Spec.Node = "node-2";
        await Fails(StatusCode.PermissionDenied, () => agent.Endpoints.UpdateAsync(claimed), "endpoint ns/theirs is on node node-2");
        Assert.Equal(theirs.Metadata.Etag, (await cluster.Silo.Client.Endpoints.GetAsync("ns", "theirs")).Metadata.Etag);

        // Its own node and endpoints are fine.
        var heartbeat = await agent.HeartbeatAsync("node-1");
        Assert.True(heartbeat.LeaseSeconds > 0);
        var own = await agent.Endpoints.CreateAsync(Endpoint("ns", "mine", "net", "node-1"));
        Assert.NotEmpty(own.Status.Ips);
        // An attach creates its endpoint not ready and marks it ready once wired: an update.
        own.Spec.Ready = !own.Spec.Ready;
        Assert.Equal(own.Spec.Ready, (await agent.Endpoints.UpdateAsync(own)).Spec.Ready);
        Assert.Equal("node-1", (await agent.Nodes.GetAsync("", "node-1")).Metadata.Name);
        Assert.Contains((await agent.Endpoints.ListAsync(new ListRequest { Namespace = "ns" })).Endpoints, e => e.Metadata.Name == "theirs");
        await agent.Endpoints.DeleteAsync("ns", "mine");
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Endpoints.GetAsync("ns", "mine"));
        await cluster.Silo.Client.Endpoints.DeleteAsync("ns", "theirs");
    }

    [Fact]
    public async Task Agent_DeleteOfAnEndpointThatIsGone_IsNotFound()
    {
        using var agent = cluster.Client("node-1", "agent");
        await Fails(StatusCode.NotFound, () => agent.Endpoints.DeleteAsync("ns", "never-was"));
    }

    [Fact]
    public async Task Reader_CannotWrite_ButCanGetListAndWatch()
    {
        using var reader = cluster.Client("dashboard", "reader");
        var before = await PositionAsync(cluster.Silo.Client);
        await Fails(StatusCode.PermissionDenied, () => reader.Namespaces.CreateAsync(Namespace("by-reader")), "role reader (dashboard) may only read (get, list, watch, explain, convergence status and waits)", "Namespaces/Create");
        await Fails(StatusCode.PermissionDenied, () => reader.Endpoints.CreateAsync(Endpoint("ns", "by-reader", "net", "node-1")), "role reader", "Endpoints/Create");
        await Fails(StatusCode.PermissionDenied, () => reader.Nodes.DeleteAsync("", "node-1"), "role reader", "Nodes/Delete");
        await Fails(StatusCode.PermissionDenied, () => reader.HeartbeatAsync("node-1"), "role reader", "Nodes/Heartbeat");
        Assert.Equal(before, await PositionAsync(cluster.Silo.Client));
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Namespaces.GetAsync("", "by-reader"));

        Assert.Equal("ns", (await reader.Namespaces.GetAsync("", "ns")).Metadata.Name);
        Assert.Contains((await reader.Nodes.ListAsync(new ListRequest())).Nodes, n => n.Metadata.Name == "node-1");
        using var watching = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        await foreach (var e in reader.WatchAsync(new WatchRequest { Kinds = { Kind.Namespace } }, cancellationToken: watching.Token))
        {
            if (e.InitialEventsEnd) break;
        }
        await reader.ConvergenceStatusAsync();
    }

    [Fact]
    public async Task Orchestrator_WritesNamespacedObjects_ButNotClusterScopedOnes()
    {
        using var orchestrator = cluster.Client("scheduler", "orchestrator");
        var before = await PositionAsync(cluster.Silo.Client);
        await Fails(StatusCode.PermissionDenied, () => orchestrator.Namespaces.CreateAsync(Namespace("by-orch")), "role orchestrator (scheduler) may only write namespaced objects", "Namespaces/Create");
        await Fails(StatusCode.PermissionDenied, () => orchestrator.Networks.CreateAsync(Network("orch-net", 102, "10.22.0.0/16")), "role orchestrator", "Networks/Create");
        await Fails(StatusCode.PermissionDenied, () => orchestrator.Networks.DeleteAsync("", "net"), "role orchestrator", "Networks/Delete");
        await Fails(StatusCode.PermissionDenied, () => orchestrator.Nodes.DeleteAsync("", "node-2"), "role orchestrator", "Nodes/Delete");
        Assert.Equal(before, await PositionAsync(cluster.Silo.Client));
        await Fails(StatusCode.NotFound, () => cluster.Silo.Client.Networks.GetAsync("", "orch-net"));

        await orchestrator.Services.CreateAsync(Service("ns", "web", "net", ("app", "web")));
        await orchestrator.Endpoints.CreateAsync(Endpoint("ns", "web-1", "net", "node-2", labels: ("app", "web")));
        await orchestrator.Endpoints.DeleteAsync("ns", "web-1");
        await orchestrator.Services.DeleteAsync("ns", "web");
    }

    [Fact]
    public async Task UnixSocket_StaysALocalAdminChannel_WithoutTls()
    {
        using var local = new ControlPlaneClient("unix:" + cluster.Socket);
        await local.Namespaces.CreateAsync(Namespace("local"));
        await local.Namespaces.DeleteAsync("", "local");
        using var anonymous = new ControlPlaneClient(cluster.Silo.Address.ToString(), tls: cluster.Pki.Anonymous());
        await Fails(StatusCode.Unauthenticated, () => anonymous.Nodes.ListAsync(new ListRequest()), "no client certificate");
    }
}
