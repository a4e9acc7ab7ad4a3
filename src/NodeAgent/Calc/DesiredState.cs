using ControlPlane.Dataplane.Linux.Overlay;

namespace ControlPlane.NodeAgent.Calc;

/// <summary>
/// What the kernel of this node should hold: one overlay per network with a local block, and the
/// host ends of the local endpoints (<see cref="Hosts"/>, by interface in <see cref="EndpointInterfaces"/>).
/// </summary>
public sealed record DesiredState(IReadOnlyList<OverlaySpec> Overlays, IReadOnlySet<string> EndpointInterfaces)
{
    public IReadOnlyList<ControlPlane.NodeAgent.Dataplane.EndpointWiring.HostSide> Hosts { get; init; } = [];
}
