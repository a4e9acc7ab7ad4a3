using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Sync;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Services;

/// <summary>
/// Service virtual IPs on this node: on its own thread, turns service changes from the watch
/// into element groups (<see cref="ServiceCalculator"/>) and applies them (<see cref="ServiceProgrammer"/>).
/// Nothing is applied before the first complete list, and nothing is removed when the agent
/// stops: the table keeps serving while the agent restarts, and the next start changes only
/// the difference. A failed apply is retried from a fresh read-back of the kernel.
/// </summary>
public sealed partial class ServiceProxy(WatchSync sync, AgentOptions options, ILogger<ServiceProxy> logger) : BackgroundService
{
    private readonly WakeSignal _wake = new();

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.ServiceProxy) return Task.CompletedTask;
        sync.ServicesChanged += Wake;
        return Task.Factory.StartNew(() => Run(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Wake() => _wake.Set();

    private void Run(CancellationToken cancellationToken)
    {
        using var nft = NftSocket.Open(ServiceRuleset.Table);
        var programmer = new ServiceProgrammer(nft);
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                _wake.Wait(options.ResyncInterval, cancellationToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (sync.TakeServiceWork() is not { } work) continue;
            try
            {
                var changes = new List<(string, ElementGroup)>(work.Services.Count + 1);
                foreach (var (key, service, endpoints) in work.Services)
                {
                    changes.Add((key, ServiceCalculator.ForService(service, endpoints)));
                }
                if (work.Endpoints is { } local)
                {
                    changes.Add((ServiceProgrammer.LocalEndpointsGroup, ServiceCalculator.ForLocalEndpoints(local, options.NodeName)));
                }
                // After start and after a failure the work is always full (everything marked dirty).
                var outcome = programmer.Apply(changes, work.Full);
                if (outcome.ReadBack || outcome.ElementsAdded + outcome.ElementsRemoved > 0)
                {
                    Log.Applied(logger, outcome.Rebuilt ? "built" : outcome.ReadBack ? "read back and converged" : "applied", outcome.ElementsAdded, outcome.ElementsRemoved, outcome.ConntrackCleared);
                }
            }
            catch (Exception e) when (e is NetlinkException or InvalidOperationException)
            {
                Log.Failed(logger, e.Message);
                programmer.Reset();
                sync.InvalidateServices();
                Thread.Sleep(200);
                Wake();
            }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Service table {What}: {Added} elements added, {Removed} removed, {Cleared} stale flows cleared")]
        public static partial void Applied(ILogger logger, string what, int added, int removed, int cleared);

        [LoggerMessage(2, LogLevel.Warning, "Service table apply failed: {Reason}; the table is read back and converged again")]
        public static partial void Failed(ILogger logger, string reason);
    }
}
