using ControlPlane.NodeAgent.Lease;

namespace ControlPlane.NodeAgent.Sync;

/// <summary>
/// When the agent is ready, for its attach socket's <c>Status</c> and its <c>/healthz</c>: its
/// node is registered, it has the control plane's full view, and the data path is programmed from
/// that view (every consumer's first pass after the list acknowledged by the kernel). Before the
/// last, a restarted agent would say ready while its tables still held what it programmed before
/// it stopped, and a client would see stale allows and denies.
/// </summary>
public static class AgentReadiness
{
    /// <summary>Null when ready, else why not.</summary>
    public static string? NotReady(AgentOptions options, NodeLease lease, WatchSync sync) =>
        !lease.Registered.IsCompletedSuccessfully ? $"node '{options.NodeName}' is not registered with the control plane yet"
        : !sync.IsSynced ? "the agent has not completed its first sync with the control plane"
        : sync.ProgrammedPosition is null ? "the data path is not yet programmed from the control plane's view"
        : null;
}
