using ControlPlane.Dataplane.Linux.Overlay;

namespace ControlPlane.NodeAgent.Calc;

/// <summary>What the kernel of this node should hold: one overlay per network with a local block, and the local endpoints' host interfaces.</summary>
public sealed record DesiredState(IReadOnlyList<OverlaySpec> Overlays, IReadOnlySet<string> EndpointInterfaces);
