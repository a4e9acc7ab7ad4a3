using ControlPlane.Contracts.Client;
using ControlPlane.NodeAgent.Sync;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Lease;

/// <summary>
/// Tells the control plane how far this node's kernel is: sends the programmed position (see
/// <see cref="ProgrammedProgress"/>) as soon as it moves, coalescing whatever moves while a
/// report is on its way into the next one, and again every <see cref="Repeat"/> so that a
/// control plane that restarted learns it without waiting for a change. Failures are retried
/// with the next move or repeat; they never touch the data path. A position follows the agent's
/// status (its policy issues) up to it: see <see cref="NodeLease.StatusDeliveredAsync"/>.
/// </summary>
public sealed partial class ProgrammedReporter(ControlPlaneClient client, WatchSync sync, NodeLease lease, AgentOptions options, ILogger<ProgrammedReporter> logger)
    : BackgroundService
{
    private static readonly TimeSpan Repeat = TimeSpan.FromSeconds(5), StatusWait = TimeSpan.FromSeconds(5);
    private readonly SemaphoreSlim _moved = new(0, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        sync.ProgrammedMoved += Moved;
        string? sent = null;
        var failing = false;
        try
        {
            await lease.Registered.WaitAsync(stoppingToken);
            while (!stoppingToken.IsCancellationRequested)
            {
                var position = sync.ProgrammedPosition;
                if (position is not null)
                {
                    try
                    {
                        // The issues of the passes up to this position first (a control plane
                        // that takes no heartbeat for a while gets the position anyway).
                        try
                        {
                            await lease.StatusDeliveredAsync(stoppingToken).WaitAsync(StatusWait, stoppingToken);
                        }
                        catch (TimeoutException)
                        {
                        }
                        await client.ReportProgrammedAsync(options.NodeName, position, Calls.Within(TimeSpan.FromSeconds(5), stoppingToken));
                        sent = position;
                        failing = false;
                    }
                    catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
                    {
                        if (!failing) Log.Failed(logger, e.StatusCode, e.Status.Detail);
                        failing = true;
                    }
                }
                // Wait for a move (one that happened while sending is already signalled).
                if (sync.ProgrammedPosition == sent || failing)
                {
                    await _moved.WaitAsync(failing ? TimeSpan.FromSeconds(1) : Repeat, stoppingToken);
                }
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            sync.ProgrammedMoved -= Moved;
        }
    }

    private void Moved()
    {
        if (_moved.CurrentCount == 0)
        {
            try { _moved.Release(); } catch (SemaphoreFullException) { }
        }
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "Reporting the programmed position failed ({Status}: {Detail}); retrying")]
        public static partial void Failed(ILogger logger, StatusCode status, string detail);
    }
}
