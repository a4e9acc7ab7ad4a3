using ControlPlane.Contracts.Client;
using Grpc.Core;
using ControlPlane.Silo.Hosting;
using Microsoft.AspNetCore.Builder;

namespace ControlPlane.Dns.Tests;

/// <summary>
/// A silo in this process serving on a unix socket (reachable from network namespaces the test
/// makes, without any address on the root namespace). Restartable on the same data and socket.
/// </summary>
internal sealed class SocketSilo : IAsyncDisposable
{
    private readonly string[] _args;
    private WebApplication? _app;

    private SocketSilo(string[] extra)
    {
        var id = Guid.NewGuid().ToString("N")[..8];
        DataDirectory = Path.Combine("/tmp", "dnsw-silo-" + id);
        Socket = Path.Combine("/tmp", $"dnsw-{id}.sock");
        _args = [$"--Silo:Port={TestPorts.Next()}", $"--Cluster:SiloPort={TestPorts.Next()}", $"--Silo:DataDirectory={DataDirectory}", $"--Silo:UnixSocket={Socket}", "--Logging:LogLevel:Default=Warning", .. extra];
    }

    public string DataDirectory { get; }

    public string Socket { get; }

    public IServiceProvider Services => _app!.Services;

    /// <summary>Starts a silo; DNS is off unless <paramref name="extra"/> turns it on.</summary>
    public static async Task<SocketSilo> StartAsync(params string[] extra)
    {
        var silo = Create(extra);
        await silo.StartAgainAsync();
        return silo;
    }

    /// <summary>A silo whose socket path is known but which is not started yet.</summary>
    public static SocketSilo Create(params string[] extra) => new(["--Dns:Enabled=false", .. extra]);

    public ControlPlaneClient Connect() => new("unix:" + Socket);

    public async Task StopAsync()
    {
        if (_app is null) return;
        await _app.StopAsync();
        await _app.DisposeAsync();
        _app = null;
    }

    public async Task StartAgainAsync()
    {
        _app = SiloApp.Build(_args);
        await _app.StartAsync();
    }

    public async ValueTask DisposeAsync()
    {
        await StopAsync();
        if (Directory.Exists(DataDirectory)) Directory.Delete(DataDirectory, recursive: true);
        File.Delete(Socket);
    }
}
