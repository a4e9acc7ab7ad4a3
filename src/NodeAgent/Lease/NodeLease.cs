using ControlPlane.Contracts.Client;
using ControlPlane.Contracts.V1;
using Grpc.Core;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Lease;

/// <summary>
/// Registers the node (or updates its underlay address) and renews its lease at a third of the
/// lease period. While the control plane is unreachable it retries with exponential backoff and
/// full jitter, and changes nothing locally (fail static).
/// </summary>
public sealed partial class NodeLease(ControlPlaneClient client, AgentOptions options, ILogger<NodeLease> logger) : BackgroundService
{
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(200);
    private readonly TaskCompletionSource _registered = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly SemaphoreSlim _report = new(0, 1);
    private readonly object _statusLock = new();
    // Starts empty, so the first heartbeat tells the control plane this node has an agent.
    private AgentStatus? _status = new(), _reported;
    // Completed (and replaced) each time a heartbeat delivers a status.
    private TaskCompletionSource _delivered = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes once the node is registered with the control plane.</summary>
    public Task Registered => _registered.Task;

    /// <summary>Blocks until the node is registered (true) or <paramref name="cancellationToken"/> is cancelled (false).</summary>
    public bool WaitRegistered(CancellationToken cancellationToken)
    {
        try
        {
            _registered.Task.Wait(cancellationToken);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>Sends the agent's status with the next heartbeat, which goes out at once.</summary>
    public void Report(AgentStatus status)
    {
        lock (_statusLock)
        {
            if (status.Equals(_status)) return;
            _status = status;
        }
        if (_report.CurrentCount == 0)
        {
            try { _report.Release(); } catch (SemaphoreFullException) { }
        }
    }

    /// <summary>
    /// Completes once the status reported so far has reached the control plane. The programmed
    /// position waits for it: a position must not tell a waiter that a pass is in force before
    /// the issues that pass found (an endpoint closed, say) are stored.
    /// </summary>
    public async Task StatusDeliveredAsync(CancellationToken cancellationToken)
    {
        while (true)
        {
            Task delivered;
            lock (_statusLock)
            {
                if (ReferenceEquals(_status, _reported)) return;
                delivered = _delivered.Task;
            }
            await delivered.WaitAsync(cancellationToken).ConfigureAwait(false);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        // The other nodes send this node's overlay traffic to the address: said once, at start,
        // when no interface here has it (a typo, or the agent started in another namespace).
        var underlay = System.Net.IPAddress.Parse(options.UnderlayIp);
        if (!System.Net.NetworkInformation.NetworkInterface.GetAllNetworkInterfaces()
                .Any(i => i.GetIPProperties().UnicastAddresses.Any(a => a.Address.Equals(underlay))))
        {
            Log.UnderlayNotHere(logger, options.UnderlayIp);
        }
        var backoff = FirstBackoff;
        var registered = false;
        var away = false;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (!registered)
                {
                    await RegisterAsync(stoppingToken);
                    registered = true;
                    _registered.TrySetResult();
                }
                AgentStatus? status;
                lock (_statusLock) status = ReferenceEquals(_status, _reported) ? null : _status;
                var lease = await client.HeartbeatAsync(options.NodeName, Calls.Within(TimeSpan.FromSeconds(5), stoppingToken), status);
                if (status is not null)
                {
                    TaskCompletionSource delivered;
                    lock (_statusLock) (_reported, delivered, _delivered) = (status, _delivered, new(TaskCreationOptions.RunContinuationsAsynchronously));
                    delivered.TrySetResult();
                }
                (backoff, away) = (FirstBackoff, false);
                await _report.WaitAsync(TimeSpan.FromSeconds(Math.Max(1, lease.LeaseSeconds / 3.0)), stoppingToken);
            }
            catch (UnderlayTakenException e) when (!stoppingToken.IsCancellationRequested)
            {
                Log.UnderlayTaken(logger, options.NodeName, options.UnderlayIp, e.Message, backoff.TotalMilliseconds);
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * backoff.TotalMilliseconds), stoppingToken);
                backoff = TimeSpan.FromTicks(Math.Min(options.MaxBackoff.Ticks, backoff.Ticks * 2));
            }
            catch (RpcException e) when (!stoppingToken.IsCancellationRequested)
            {
                if (e.StatusCode == StatusCode.NotFound) (registered, _reported) = (false, null);
                if (FailoverCallInvoker.Unreachable(e) || e.StatusCode == StatusCode.DeadlineExceeded)
                {
                    // One warning per outage; its retries are debug lines.
                    if (away) Log.StillUnreachable(logger, options.ControlPlane, e.StatusCode, backoff.TotalMilliseconds);
                    else Log.Unreachable(logger, options.ControlPlane, e.StatusCode, backoff.TotalMilliseconds);
                    away = true;
                }
                else
                    Log.Refused(logger, options.ControlPlane, options.NodeName, e.StatusCode, e.Status.Detail, backoff.TotalMilliseconds);
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * backoff.TotalMilliseconds), stoppingToken);
                backoff = TimeSpan.FromTicks(Math.Min(options.MaxBackoff.Ticks, backoff.Ticks * 2));
            }
            catch (Exception e) when (stoppingToken.IsCancellationRequested && e is OperationCanceledException or RpcException)
            {
                return;
            }
        }
    }

    private async Task RegisterAsync(CancellationToken cancellationToken)
    {
        var call = Calls.Within(TimeSpan.FromSeconds(5), cancellationToken);
        var node = new Node { Metadata = new ObjectMeta { Name = options.NodeName }, Spec = new NodeSpec { UnderlayIp = options.UnderlayIp } };
        try
        {
            var created = await client.Nodes.CreateAsync(node, call);
            Log.Registered(logger, options.NodeName, options.UnderlayIp, created.Status.VtepMac);
        }
        catch (RpcException e) when (e.StatusCode == StatusCode.AlreadyExists)
        {
            Node existing;
            try
            {
                existing = await client.Nodes.GetAsync("", options.NodeName, call);
            }
            catch (RpcException missing) when (missing.StatusCode == StatusCode.NotFound)
            {
                // The node does not exist, so what exists already is its underlay address, held by another node.
                throw new UnderlayTakenException(e.Status.Detail, missing);
            }
            if (existing.Spec.UnderlayIp != options.UnderlayIp)
            {
                existing.Spec.UnderlayIp = options.UnderlayIp;
                try
                {
                    existing = await client.Nodes.UpdateAsync(existing, call);
                }
                catch (RpcException taken) when (taken.StatusCode == StatusCode.AlreadyExists)
                {
                    // The node exists; what exists already is the address, held by another node.
                    throw new UnderlayTakenException(taken.Status.Detail, taken);
                }
            }
            Log.Registered(logger, options.NodeName, options.UnderlayIp, existing.Status.VtepMac);
        }
    }

    /// <summary>Registration refused because another node holds this node's underlay address.</summary>
    private sealed class UnderlayTakenException(string detail, Exception inner) : Exception(detail, inner);

    private static partial class Log
    {
        [LoggerMessage(3, LogLevel.Error, "Node {Node} cannot register: its underlay address {UnderlayIp} belongs to another node ({Detail}); retrying within {BackoffMs} ms")]
        public static partial void UnderlayTaken(ILogger logger, string node, string underlayIp, string detail, double backoffMs);

        [LoggerMessage(1, LogLevel.Information, "Node {Node} registered with underlay {UnderlayIp}, VTEP MAC {Mac}")]
        public static partial void Registered(ILogger logger, string node, string underlayIp, string mac);

        [LoggerMessage(2, LogLevel.Warning, "Control plane {Address} unreachable ({Status}); retrying within {BackoffMs} ms")]
        public static partial void Unreachable(ILogger logger, string address, StatusCode status, double backoffMs);

        [LoggerMessage(6, LogLevel.Debug, "Control plane {Address} still unreachable ({Status}); retrying within {BackoffMs} ms")]
        public static partial void StillUnreachable(ILogger logger, string address, StatusCode status, double backoffMs);

        [LoggerMessage(5, LogLevel.Warning, "Agent:UnderlayIp {UnderlayIp} is on no interface of this host (its network namespace): the other nodes' overlay traffic to it will not arrive here")]
        public static partial void UnderlayNotHere(ILogger logger, string underlayIp);

        [LoggerMessage(4, LogLevel.Error, "Control plane {Address} refused node {Node}: {Status}: {Detail}; retrying within {BackoffMs} ms")]
        public static partial void Refused(ILogger logger, string address, string node, StatusCode status, string detail, double backoffMs);
    }
}
