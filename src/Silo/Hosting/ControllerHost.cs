using ControlPlane.Grains.Controllers;
using Microsoft.Extensions.Hosting;

namespace ControlPlane.Silo.Hosting;

/// <summary>Runs the controllers that derive state from the change stream for as long as the silo runs.</summary>
public sealed class ControllerHost(IEnumerable<FeedController> controllers) : BackgroundService
{
    public bool Synced => controllers.All(c => c.Synced);

    protected override Task ExecuteAsync(CancellationToken stoppingToken) =>
        Task.WhenAll(controllers.Select(c => Task.Run(() => c.RunAsync(stoppingToken), stoppingToken)));
}
