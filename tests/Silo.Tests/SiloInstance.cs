using ControlPlane.Contracts.Client;
using ControlPlane.Storage.GrainStorage;
using ControlPlane.Silo.Hosting;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;

namespace ControlPlane.Silo.Tests;

/// <summary>A silo hosted in the test process: real Kestrel on a free loopback port, real SQLite file.</summary>
internal sealed class SiloInstance : IAsyncDisposable
{
    private readonly WebApplication _app;

    private readonly bool _ownsDirectory;

    private SiloInstance(WebApplication app, string dataDirectory, Uri address, bool ownsDirectory)
    {
        _app = app;
        _ownsDirectory = ownsDirectory;
        DataDirectory = dataDirectory;
        Address = address;
        Client = new ControlPlaneClient(address);
    }

    public string DataDirectory { get; }

    public Uri Address { get; }

    public ControlPlaneClient Client { get; }

    public DurableStore Store => _app.Services.GetRequiredService<DurableStore>();

    public IServiceProvider Services => _app.Services;

    public static Task<SiloInstance> StartAsync(params string[] settings) =>
        StartInAsync(Path.Combine(Path.GetTempPath(), "cp-silo-" + Guid.NewGuid().ToString("N")), ownsDirectory: true, settings);

    /// <summary>A silo on a data directory the caller keeps (and deletes): a restart with other settings.</summary>
    public static async Task<SiloInstance> StartInAsync(string dataDirectory, bool ownsDirectory, params string[] settings)
    {
        string[] args = ["--Silo:Port=0", $"--Silo:DataDirectory={dataDirectory}", "--Logging:LogLevel:Default=Warning", "--Dns:Enabled=false", .. settings];
        var app = SiloApp.Build(args);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new SiloInstance(app, dataDirectory, new Uri(address), ownsDirectory);
    }

    public Task StopAsync() => _app.StopAsync();

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await _app.StopAsync();
        await _app.DisposeAsync();
        if (_ownsDirectory) Directory.Delete(DataDirectory, recursive: true);
    }
}
