using ControlPlane.Contracts.Policy;
using ControlPlane.Contracts.V1;
using ControlPlane.Dataplane.Linux.Netlink;
using ControlPlane.Dataplane.Linux.Nftables;
using ControlPlane.NodeAgent.Lease;
using ControlPlane.NodeAgent.Policy;
using ControlPlane.NodeAgent.Services;
using ControlPlane.NodeAgent.Sync;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace ControlPlane.NodeAgent.Table;

/// <summary>
/// Programs the agent's nftables table on its own thread: service changes become element groups
/// through <see cref="ServiceCalculator"/>, policy changes through <see cref="PolicyIndex"/>, and
/// one <see cref="TableProgrammer"/> applies them together, one transaction per pass. Nothing is
/// applied before the first complete list and the node's registration, and nothing is removed when the agent stops: the table
/// keeps serving while the agent restarts, and the next start changes only the difference.
/// A policy group the kernel refuses is applied closed (isolated, nothing allowed) and reported
/// in the node's status, like one over the entry limit; any other failure is retried from a
/// fresh read-back of the kernel. At least every <see cref="AgentOptions.ResyncInterval"/> the
/// table is read back and converged as well: whatever changed it behind the agent's back (an
/// element deleted by hand, a rule added) is put right, as the overlay reconciler does for routes.
/// </summary>
public sealed partial class TableWorker(WatchSync sync, AgentOptions options, NodeLease lease, Telemetry.AgentTelemetry telemetry, ILogger<TableWorker> logger) : BackgroundService
{
    private readonly WakeSignal _wake = new();

    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!options.ServiceProxy && !options.NetworkPolicy) return Task.CompletedTask;
        sync.TableChanged += _wake.Set;
        return Task.Factory.StartNew(() => Run(stoppingToken), stoppingToken, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    private void Run(CancellationToken cancellationToken)
    {
        using var nft = NftSocket.Open(AgentTable.Name);
        var programmer = new TableProgrammer(nft);
        var policy = new PolicyIndex(options.NodeName, options.PolicyEntryLimit);
        // When the table was last read back (none yet: the first pass reads it back anyway).
        long? readBack = null;
        if (!lease.WaitRegistered(cancellationToken)) return;
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
            // Due for a read-back: everything is recomputed and the kernel's table converged to it.
            // Changes that arrived meanwhile are applied first, as changes, so that what the
            // read-back then finds is only what changed the table behind the agent's back.
            var resync = readBack is { } last && System.Diagnostics.Stopwatch.GetElapsedTime(last) >= options.ResyncInterval;
            if (resync)
            {
                // (A full piece of work, after a new list, read the table back already.)
                if (sync.TakeTableWork() is { } changes && (!Process(programmer, policy, changes, resync: false, ref readBack) || changes.Full)) continue;
                programmer.Reset();
                sync.InvalidateTable();
            }
            if (sync.TakeTableWork() is not { } work) continue;
            Process(programmer, policy, work, resync, ref readBack);
        }
    }

    /// <summary>Applies one piece of table work; false when it failed (it is retried from a fresh read-back).</summary>
    private bool Process(TableProgrammer programmer, PolicyIndex policy, WatchSync.TableWork work, bool resync, ref long? readBack)
    {
        using var activity = Telemetry.AgentTelemetry.StartApply("agent.apply nftables", sync.TakeTraces(ProgrammedProgress.Consumer.Table));
        var started = System.Diagnostics.Stopwatch.GetTimestamp();
        try
        {
            var changes = new List<(string, ElementGroup)>();
            if (options.ServiceProxy)
            {
                foreach (var (key, service, endpoints) in work.Services) changes.Add((key, ServiceCalculator.ForService(service, endpoints, work.Networks)));
                foreach (var (key, import) in work.Imports) changes.Add((ServiceCalculator.ImportGroupPrefix + key, ServiceCalculator.ForImport(import, work.Networks)));
                if (work.AllEndpoints is { } all) changes.Add((ServiceCalculator.LocalEndpointsGroup, ServiceCalculator.ForLocalEndpoints(all, options.NodeName)));
            }
            if (options.NetworkPolicy)
            {
                Update(policy, work);
                changes.AddRange(policy.TakeChanges());
            }
            // After start and after a failure the work is always full (everything marked dirty).
            var outcome = Apply(programmer, policy, changes, work.Full);
            // After the table: a packet in between is judged by the rules for the address's new holder.
            outcome = outcome with { ConntrackCleared = outcome.ConntrackCleared + ClearDepartedAddresses(work) };
            telemetry.NftablesApplied(System.Diagnostics.Stopwatch.GetElapsedTime(started));
            CountPolicyEntries(changes, work.Full);
            if (outcome.ReadBack) readBack = System.Diagnostics.Stopwatch.GetTimestamp();
            // A periodic read-back that found the table as programmed says nothing.
            if ((outcome.ReadBack && !resync) || outcome.ElementsAdded + outcome.ElementsRemoved > 0)
            {
                Log.Applied(logger, outcome.Rebuilt ? "built" : outcome.ReadBack ? "read back and converged" : "applied", outcome.ElementsAdded, outcome.ElementsRemoved, outcome.ConntrackCleared);
            }
            Report(policy);
            sync.Programmed(ProgrammedProgress.Consumer.Table, work.Step, programmed: true);
            return true;
        }
        catch (Exception e) when (e is NetlinkException or InvalidOperationException)
        {
            Log.Failed(logger, e.Message);
            telemetry.NftablesApplied(System.Diagnostics.Stopwatch.GetElapsedTime(started));
            activity.Failed(e.Message);
            sync.Programmed(ProgrammedProgress.Consumer.Table, work.Step, programmed: false);
            programmer.Reset();
            sync.InvalidateTable();
            Thread.Sleep(200);
            _wake.Set();
            return false;
        }
    }

    // Each endpoint's uid and addresses as last seen (and the pass that saw them), and addresses
    // whose holder left and whose flows are still to be cleared (this thread only).
    private readonly Dictionary<string, (string Uid, string[] Ips, long Pass)> _addresses = new(StringComparer.Ordinal);
    private readonly HashSet<System.Net.IPAddress> _departed = [];
    private long _pass;

    /// <summary>
    /// Clears the connection tracking entries of addresses whose endpoint was deleted or gave them
    /// up (on every node: a flow may pass through any). Policy is judged on a flow's first packet,
    /// so an entry outliving its endpoint would let a flow that endpoint's policy allowed (a UDP
    /// stream, say) carry on to the next workload given the address, whatever its own policy
    /// says. An endpoint deleted and made again under its name is another endpoint (another uid).
    /// Returns how many entries went.
    /// </summary>
    private int ClearDepartedAddresses(WatchSync.TableWork work)
    {
        _pass++;
        foreach (var (key, endpoint) in work.Endpoints) Hold(key, endpoint?.Metadata?.Uid ?? "", endpoint?.Status?.Ips.ToArray() ?? []);
        if (work.Full)
        {
            // A full pass lists every endpoint: one it did not list is gone.
            foreach (var (key, had) in _addresses)
            {
                if (had.Pass != _pass) Hold(key, "", []);
            }
        }
        if (_departed.Count == 0) return 0;
        var cleared = Conntrack.DeleteInvolving(_departed);
        _departed.Clear();
        return cleared;
    }

    private void Hold(string key, string uid, string[] ips)
    {
        if (_addresses.TryGetValue(key, out var had))
        {
            foreach (var ip in had.Ips)
            {
                if ((had.Uid != uid || Array.IndexOf(ips, ip) < 0) && System.Net.IPAddress.TryParse(ip, out var address)) _departed.Add(address);
            }
        }
        // Removing while the full pass enumerates is allowed; adding happens only for listed keys.
        if (ips.Length > 0) _addresses[key] = (uid, ips, _pass); else _addresses.Remove(key);
    }

    // Elements per policy group in the table, for the policy entries gauge (this thread only).
    private readonly Dictionary<string, int> _policyEntries = [];

    private void CountPolicyEntries(List<(string Key, ElementGroup Group)> changes, bool full)
    {
        if (full) _policyEntries.Clear();
        foreach (var (key, group) in changes)
        {
            if (!IsPolicy(key)) continue;
            if (group.Elements.Count == 0) _policyEntries.Remove(key);
            else _policyEntries[key] = group.Elements.Count;
        }
        telemetry.PolicyEntries(_policyEntries.Values.Sum());
    }

    private static void Update(PolicyIndex policy, WatchSync.TableWork work)
    {
        if (work.Full)
        {
            policy.Reset(work.Endpoints.Select(e => e.Value!), work.Policies.Select(p => p.Value!), work.Namespaces.Select(n => n.Value!));
            return;
        }
        foreach (var (name, ns) in work.Namespaces) policy.UpdateNamespace(name, ns);
        foreach (var (key, endpoint) in work.Endpoints) policy.UpdateEndpoint(key, endpoint);
        foreach (var (key, p) in work.Policies) policy.UpdatePolicy(key, p);
    }

    /// <summary>
    /// Applies everything in one transaction; if the kernel refuses it, policy groups go in closed
    /// first and then each whole on its own, and those refused again stay closed and are reported.
    /// </summary>
    private static TableProgrammer.Outcome Apply(TableProgrammer programmer, PolicyIndex policy, List<(string Key, ElementGroup Group)> changes, bool full)
    {
        var (outcome, refused) = programmer.ApplyIsolating(changes, full, IsPolicy, PolicyRuleset.Closed);
        foreach (var (key, reason) in refused) policy.Refused(key, "the kernel refused its allow-list: " + reason);
        return outcome;
    }

    private static bool IsPolicy(string key) => key.StartsWith(PolicyIndex.GroupPrefix, StringComparison.Ordinal);

    private void Report(PolicyIndex policy)
    {
        var status = new AgentStatus();
        foreach (var problem in policy.Problems)
        {
            status.PolicyIssues.Add(new PolicyIssue
            {
                Endpoint = problem.Endpoint,
                Direction = problem.Direction.ToString(),
                Policies = { problem.Policies },
                Reason = problem.Reason,
            });
        }
        lease.Report(status);
    }

    private static partial class Log
    {
        [LoggerMessage(1, LogLevel.Information, "Table {What}: {Added} elements added, {Removed} removed, {Cleared} stale flows cleared")]
        public static partial void Applied(ILogger logger, string what, int added, int removed, int cleared);

        [LoggerMessage(2, LogLevel.Warning, "Table apply failed: {Reason}; the table is read back and converged again")]
        public static partial void Failed(ILogger logger, string reason);

    }
}
