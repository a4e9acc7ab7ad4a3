namespace ControlPlane.NodeAgent.Dataplane;

/// <summary>
/// The workload's namespace has an interface of the name an endpoint is to be wired with, and it
/// is not that endpoint's (not the far end of its veth): another container's, or one the runtime
/// or another plugin made. Nothing was changed.
/// </summary>
public sealed class InterfaceTakenException(string interfaceName, string netnsPath)
    : Exception($"{interfaceName} in {netnsPath} is another interface than this endpoint's (not the far end of its veth); it was left as it is");
