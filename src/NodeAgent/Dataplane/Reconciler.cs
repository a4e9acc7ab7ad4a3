using System.Net;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Overlay;
using ControlPlane.NodeAgent.Calc;
using ControlPlane.NodeAgent.Sync;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Dataplane;

/// <summary>
/// Calc → drivers on one dedicated thread that owns the netlink socket. Nothing is applied before
/// the first complete sync; then every change (coalesced) and every resync interval recomputes
/// the desired state and applies it: each network's overlay, removal of overlays and endpoint
/// interfaces that are ours but no longer wanted. Failures stay pending and are retried. Each pass
/// also tells <see cref="Attach.OrphanedAttachments"/> which endpoints' interfaces exist. Nothing is
/// applied before the node is registered either: an agent whose node the control plane refuses
/// (its underlay address is another node's) must not program the host as that node.
/// </summary>
public sealed partial class Reconciler(WatchSync sync, AgentOptions options, Attach.PendingAttachments pending, Attach.OrphanedAttachments orphans, Lease.NodeLease lease,
    Telemetry.AgentTelemetry telemetry, ILogger<Reconciler> logger) : BackgroundService
{
    private readonly WakeSignal _wake = new();

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        sync.Changed += Wake;
        return Task.Factory.StartNew(() => Run(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Wake() => _wake.Set();

    private void Run(CancellationToken cancellationToken)
    {
        using var rtnl = RouteNetlink.Open();
        var forwarding = false;
        var overlay = new VxlanOverlay(rtnl, options.RouteProtocol);
        var underlay = IPAddress.Parse(options.UnderlayIp);
        if (!lease.WaitRegistered(cancellationToken)) return;
        while (!cancellationToken.IsCancellationRequested)
        {
            try
            {
                _wake.Wait(options.ResyncInterval, cancellationToken);
                Thread.Sleep(5); // coalesce a burst of changes into one pass
            }
            catch (OperationCanceledException)
            {
                return;
            }
            if (sync.TakeOverlay() is not var (view, step))
            {
                continue;
            }
            var programmed = false;
            using var activity = Telemetry.AgentTelemetry.StartApply("agent.apply netlink", sync.TakeTraces(ProgrammedProgress.Consumer.Overlay));
            var started = System.Diagnostics.Stopwatch.GetTimestamp();
            try
            {
                var desired = OverlayCalculator.Calculate(view, options.NodeName, underlay);
                if (!forwarding && desired.Overlays.Count > 0 && options.EnableForwarding)
                {
                    forwarding = EnableForwarding();
                }
                pending.Settle(view.Endpoints);
                programmed = Pass(rtnl, overlay, desired, out var interfaces);
                orphans.Observe(view.Endpoints, interfaces);
            }
            catch (Exception e) when (e is NetlinkException or InvalidOperationException or IOException)
            {
                Log.PassFailed(logger, e.Message);
            }
            telemetry.NetlinkApplied(System.Diagnostics.Stopwatch.GetElapsedTime(started));
            if (!programmed) activity.Failed("not every change was acknowledged");
            sync.Programmed(ProgrammedProgress.Consumer.Overlay, step, programmed);
        }
    }

    /// <summary>One pass; true when the kernel acknowledged every change it made. <paramref name="interfaces"/>: the links there are after it.</summary>
    private bool Pass(RouteNetlink rtnl, VxlanOverlay overlay, DesiredState desired, out HashSet<string> interfaces)
    {
        var complete = true;
        foreach (var spec in desired.Overlays)
        {
            foreach (var (change, error) in overlay.Apply(spec))
            {
                Log.ChangeFailed(logger, spec.Device, change, error.Message);
                complete = false;
            }
        }
        // The host ends of local endpoints: what went missing since their attach is put back.
        var links = rtnl.ListLinks();
        var repaired = EndpointWiring.RepairHosts(rtnl, links, desired.Hosts, i => pending.IsPending(i) || pending.IsWiring(i), options.RouteProtocol);
        if (repaired.Count > 0) Log.HostsRepaired(logger, repaired.Count, string.Join(", ", repaired.Take(10)));
        var wantedDevices = desired.Overlays.Select(o => o.Device).ToHashSet();
        foreach (var link in links)
        {
            if (link.Name.StartsWith(Names.OverlayPrefix, StringComparison.Ordinal) && link.Kind == "vxlan" && !wantedDevices.Contains(link.Name)
                && uint.TryParse(link.Name[Names.OverlayPrefix.Length..], out var vni))
            {
                overlay.Remove(link.Name, Names.Table(vni));
            }
            else if (link.Name.StartsWith(Names.EndpointPrefix, StringComparison.Ordinal) && link.Kind == "veth"
                && !desired.EndpointInterfaces.Contains(link.Name) && !pending.IsPending(link.Name))
            {
                EndpointWiring.Disconnect(link.Name, options.RouteProtocol);
                Log.EndpointRemoved(logger, link.Name);
            }
        }
        // Rules of ours whose interface is gone (a rule outlives the device it names). The rules
        // are read before the links: an attach adds the device, then its rule, so a rule read here
        // names a device the later read still finds unless it really went away meanwhile. (Read the
        // other way round, an attach between the two reads lost its brand-new rule.)
        var rules = AddressFamilies.Both.SelectMany(family => rtnl.ListRules(family, options.RouteProtocol)).ToList();
        var live = rtnl.ListLinks().Select(l => l.Name).ToHashSet();
        var stale = rtnl.Batch();
        foreach (var rule in rules.Where(r => r.InputInterface is { } i && !live.Contains(i) && !pending.IsPending(i)))
        {
            stale.DeleteRule(rule.Family, rule.InputInterface!, rule.Table, rule.Priority, options.RouteProtocol);
        }
        stale.Execute();
        interfaces = live;
        return complete;
    }

    /// <summary>
    /// Forwarding on in both families; a setting already on is not written, so a container whose
    /// /proc/sys is read-only works when its runtime set them (compose's sysctls). The failure names
    /// the file and what to do.
    /// </summary>
    private bool EnableForwarding()
    {
        foreach (var setting in new[] { "/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding" })
        {
            try
            {
                if (!File.Exists(setting) || File.ReadAllText(setting).Trim() == "1") continue;
                File.WriteAllText(setting, "1");
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                Log.PassFailed(logger, $"cannot turn forwarding on ({setting}: {e.Message}); set it to 1 before the agent starts (a container's sysctls), or leave Agent:EnableForwarding on where /proc/sys is writable");
                return false;
            }
        }
        return true;
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Warning, "{Device}: {Change} failed: {Reason}; retried on the next pass")]
        public static partial void ChangeFailed(ILogger logger, string device, string change, string reason);

        [LoggerMessage(2, LogLevel.Warning, "Reconcile pass failed: {Reason}; retried on the next pass")]
        public static partial void PassFailed(ILogger logger, string reason);

        [LoggerMessage(3, LogLevel.Information, "Removed the interface {Interface} of an endpoint that is gone")]
        public static partial void EndpointRemoved(ILogger logger, string @interface);

        [LoggerMessage(4, LogLevel.Warning, "Put back {Count} missing pieces of local endpoints' host ends: {What}")]
        public static partial void HostsRepaired(ILogger logger, int count, string what);
    }
}
